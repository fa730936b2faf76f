"""``emotions-data baseline train|evaluate|predict|convert-weights``: the AV-CPNet baseline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from emotions_data.cli.common import Settings, emit_json, is_tty, pass_settings

DEVICES = click.Choice(["cuda", "cpu"])


def _overrides(pairs: tuple[str, ...]) -> dict[str, Any]:
    import yaml

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise click.BadParameter(
                f"{pair!r} must look like section.key=value", param_hint="--set"
            )
        out[key.strip()] = yaml.safe_load(value)
    return out


@click.group()
def baseline() -> None:
    """Train, evaluate and run the AV-CPNet reference baseline on a variant and its cache.

    \b
    Example:
      emotions-data baseline train --variant data/variants/full.parquet --root data \\
          --config tiny --device cpu --out runs/tiny
    """


@baseline.command()
@click.option(
    "--variant",
    required=True,
    type=click.Path(path_type=Path),
    help="Split/variant manifest (or a folder holding one).",
)
@click.option(
    "--root",
    required=True,
    type=click.Path(path_type=Path),
    help="Dataset root holding cache/VIDEO_ID/.",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    help="Baseline YAML, or a bundled name: tiny, avcpnet (default: the paper's setting).",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("runs/avcpnet"),
    show_default=True,
    help="Run folder.",
)
@click.option("--epochs", type=int, help="Override optim.epochs.")
@click.option("--device", type=DEVICES, help="cuda or cpu (default: cuda when available).")
@click.option(
    "--resume",
    type=click.Path(path_type=Path),
    help="Continue exactly from a checkpoint (last.pt).",
)
@click.option(
    "--visual-weights",
    type=click.Path(path_type=Path),
    help="Local swin3d_t or 2D swin_t state dict.",
)
@click.option("--stop-after-epochs", type=int, help="End this run after N epochs (resume later).")
@click.option(
    "--set", "sets", multiple=True, metavar="SECTION.KEY=VALUE", help="Override a config value."
)
@click.option(
    "--json",
    "json_out",
    is_flag=False,
    flag_value="-",
    default=None,
    help="Write the result as JSON (to stdout with no value).",
)
@pass_settings
def train(
    settings: Settings,
    variant: Path,
    root: Path,
    config_path: Path | None,
    out: Path,
    epochs: int | None,
    device: str | None,
    resume: Path | None,
    visual_weights: Path | None,
    stop_after_epochs: int | None,
    sets: tuple[str, ...],
    json_out: str | None,
) -> None:
    """Train on the train split, select the best epoch on val, write checkpoints and metrics.

    Launch with torchrun for DDP (gloo on CPU, nccl on CUDA); the root --seed seeds the run.

    \b
    Example:
      emotions-data --seed 1 baseline train --variant data/variants/full.parquet \\
          --root data --config baselines/configs/avcpnet.yaml --out runs/paper
      torchrun --nproc-per-node 4 "$(command -v emotions-data)" baseline train \\
          --variant data/variants/full.parquet --root data --out runs/ddp
    """
    from emotions_data.baselines.avcpnet.config import load_config
    from emotions_data.baselines.avcpnet.trainer import fit

    overrides = _overrides(sets)
    if epochs is not None:
        overrides["optim.epochs"] = epochs
    config = load_config(config_path, overrides)
    result = fit(
        variant,
        root,
        config,
        out,
        device=device,
        resume=resume,
        visual_weights=visual_weights,
        seed=settings.seed,
        stop_after_epochs=stop_after_epochs,
        progress=is_tty(),
    )
    if result.world_size > 1 and not _is_rank0():
        return
    click.echo(result.weights, err=True)
    val = result.val
    skipped = {k: len(v) for k, v in result.skipped.items()}
    click.echo(
        f"best epoch {result.best_epoch} (val {result.select_metric}): accuracy {val.get('accuracy', 0):.3f}, "
        f"UAR {val.get('uar', 0):.3f}, macro-F1 {val.get('macro_f1', 0):.3f}; skipped {skipped}; "
        f"run folder {result.run_dir}",
        err=json_out == "-",  # keep stdout pure JSON
    )
    emit_json(
        {
            "run_dir": str(result.run_dir),
            "best_checkpoint": str(result.best_checkpoint),
            "best_epoch": result.best_epoch,
            "select_metric": result.select_metric,
            "val": val,
            "skipped": result.skipped,
            "epochs": len(result.history),
        },
        json_out,
    )


def _is_rank0() -> bool:
    import os

    return os.environ.get("RANK", "0") == "0"


@baseline.command()
@click.option(
    "--checkpoint", required=True, type=click.Path(path_type=Path), help="A checkpoint (best.pt)."
)
@click.option(
    "--variant",
    type=click.Path(path_type=Path),
    help="Split/variant manifest (default: the one the checkpoint was trained on).",
)
@click.option(
    "--root",
    type=click.Path(path_type=Path),
    help="Dataset root holding cache/ (default: the checkpoint's).",
)
@click.option(
    "--split", type=click.Choice(["train", "val", "test"]), default="test", show_default=True
)
@click.option(
    "--out", type=click.Path(path_type=Path), help="Output folder (default: the checkpoint's)."
)
@click.option("--device", type=DEVICES, help="cuda or cpu (default: cuda when available).")
@click.option(
    "--json",
    "json_out",
    is_flag=False,
    flag_value="-",
    default=None,
    help="Write the metrics as JSON.",
)
def evaluate(
    checkpoint: Path,
    variant: Path | None,
    root: Path | None,
    split: str,
    out: Path | None,
    device: str | None,
    json_out: str | None,
) -> None:
    """Evaluate a checkpoint on one split: metrics JSON, confusion matrix JSON/PNG, predictions.

    \b
    Example:
      emotions-data baseline evaluate --checkpoint runs/paper/best.pt --split test
      emotions-data baseline evaluate --checkpoint runs/paper/best.pt \\
          --variant data/variants/balanced.parquet --root data --split test --out runs/bal
    """
    from emotions_data.baselines.avcpnet.trainer import evaluate_checkpoint

    m = evaluate_checkpoint(
        checkpoint, variant, root, split=split, out=out, device=device, progress=is_tty()
    )
    if not _is_rank0():
        return
    click.echo(
        f"{split}: n {m['n']}, accuracy {m['accuracy']:.3f}, UAR {m['uar']:.3f}, "
        f"macro-F1 {m['macro_f1']:.3f}, weighted-F1 {m['weighted_f1']:.3f}; "
        + "".join(
            f"{head.replace('_', '-')} accuracy {h['accuracy']:.3f}, UAR {h['uar']:.3f}; "
            for head, h in m.get("heads", {}).items()
            if head != "fused"
        )
        + f"skipped {len(m['skipped']) + len(m['missing'])}",
        err=json_out == "-",
    )
    emit_json(m, json_out)


@baseline.command()
@click.argument("videos", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--checkpoint", required=True, type=click.Path(path_type=Path), help="A checkpoint (best.pt)."
)
@click.option(
    "--out", type=click.Path(path_type=Path), help="Also write the probabilities as JSON here."
)
@click.option(
    "--prepare-config",
    type=click.Path(path_type=Path),
    help="The prepare YAML the training data was prepared with (default: prepare's defaults).",
)
@click.option("--device", type=DEVICES, help="cuda or cpu (default: cuda when available).")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Videos per forward pass.",
)
@click.option(
    "--json",
    "json_out",
    is_flag=False,
    flag_value="-",
    default=None,
    help="Write the rows as JSON.",
)
def predict(
    videos: tuple[Path, ...],
    checkpoint: Path,
    out: Path | None,
    prepare_config: Path | None,
    device: str | None,
    batch_size: int,
    json_out: str | None,
) -> None:
    """Class probabilities for raw video files (their cache is built on the fly), in batches.

    \b
    Example:
      emotions-data baseline predict --checkpoint runs/paper/best.pt clip1.mp4 clip2.mp4
    """
    from emotions_data.baselines.avcpnet.predict import predict_videos

    rows = predict_videos(
        checkpoint,
        list(videos),
        device=device,
        out=out,
        prepare_config=prepare_config,
        batch_size=batch_size,
    )
    if json_out is not None:
        emit_json(rows, json_out)
        return
    for row in rows:
        probs = "  ".join(f"{c} {p:.3f}" for c, p in row["probabilities"].items())
        click.echo(f"{row['video']}: {row['pred']}  ({probs})")


@baseline.command("convert-weights")
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.option(
    "--out", required=True, type=click.Path(path_type=Path), help="The 3D visual weights to write."
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    help="Baseline YAML whose visual branch the weights are for (default: the paper's).",
)
def convert_weights(checkpoint: Path, out: Path, config_path: Path | None) -> None:
    """Inflate a 2D Swin-T checkpoint (official layout, e.g. the ImageNet-22K release, or
    torchvision's swin_t) to the 3D visual branch, for `baseline train --visual-weights`.

    Video Swin's inflation: patch-embedding kernels repeated over time and divided by the
    temporal patch size, bias tables resized (bicubic) to the window and repeated over the
    temporal offsets, the classification head dropped. Nothing is downloaded.

    \b
    Example:
      emotions-data baseline convert-weights swin_tiny_patch4_window7_224_22k.pth \\
          --out weights/swin_t_22k_3d.pt
      emotions-data baseline train --variant data/variants/full.parquet --root data \\
          --visual-weights weights/swin_t_22k_3d.pt --out runs/paper
    """
    from emotions_data.baselines.avcpnet.config import load_config
    from emotions_data.baselines.avcpnet.model import VisualBranch
    from emotions_data.baselines.avcpnet.weights import convert_weights as convert

    config = load_config(config_path)
    result = convert(checkpoint, out, VisualBranch(config.model).swin)
    head = f"; dropped head {result.dropped_head}" if result.dropped_head else ""
    unused = f"; {len(result.unused)} source tensor(s) unused" if result.unused else ""
    click.echo(
        f"{result.out}: {result.tensors} tensors, {result.parameters:,} parameters "
        f"({result.layout} -> 3D){head}{unused}"
    )
