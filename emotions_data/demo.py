"""``emotions-data demo``: the whole chain on generated videos, on this machine, with real tools.

1. generate a small corpus (six classes, portrait and landscape, reposts, silent, too short and
   broken clips) and serve it from a loopback HTTP server (some URLs dead);
2. ``fetch`` (yt-dlp) and ``prepare`` (ffprobe, filters, dedup, normalise, training cache);
3. start the embedded Label Studio, allocate a simulated roster into three groups and run the
   whole protocol with the simulated crowd through the real server;
4. the agreement report; 5. ``split`` and ``build-variants``;
6. ``baseline train`` (tiny.yaml, CPU) and ``baseline evaluate`` on the test split;
7. ``stats``, ``release`` (ids only) and ``hydrate`` from the release;
8. stop every server it started and print what was made where.

Every step is idempotent, so a second run into the same folder resumes instead of starting over.
The corpus server keeps its port across runs (``demo.json``) because the URLs, and with them
the video ids, must stay the same.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from emotions_data.schema.atomic import atomic_write_text
from emotions_data.schema.errors import ServiceError
from emotions_data.schema.resources import BASELINES_DIR

STEPS = 8


@dataclass
class DemoResult:
    out: Path
    artefacts: dict[str, Path] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "artefacts": {k: str(v) for k, v in self.artefacts.items()},
            "figures": self.figures,
            "timings_s": {k: round(v, 1) for k, v in self.timings.items()},
        }


#: Where the corpus server's port is looked for: video ids derive from URLs (port included)
#: and the simulated crowd draws per video id, so a port of its own per seed makes a run
#: repeat whole (a random free port gave another crowd, and other labels, on each run).
_PORT_BASE, _PORT_SPAN = 24000, 2000  # below Linux's ephemeral ports (32768-60999)


def _corpus_port(out: Path, seed: int) -> int:
    """The corpus server's port: the one of the previous run (ids derive from URLs), else the
    first free one from the seed's own (``_PORT_BASE``)."""
    from emotions_data.annotation.server import free_port, port_is_free

    state_path = out / "demo.json"
    if state_path.exists():
        port = int(json.loads(state_path.read_text())["port"])
        if not port_is_free(port):
            raise ServiceError(
                f"port {port} of the previous demo run in {out} is taken; free it or use a new --out"
            )
        return port
    first = _PORT_BASE + (seed * 101) % _PORT_SPAN
    # the seed's port taken: the next free one (the run works; its crowd differs)
    port = next((p for p in range(first, first + 50) if port_is_free(p)), None) or free_port()
    atomic_write_text(state_path, json.dumps({"port": port}) + "\n")
    return port


class _Steps:
    """Numbered progress lines with timings."""

    def __init__(self, echo: Callable[[str], None], result: DemoResult) -> None:
        self.echo = echo
        self.result = result
        self.n = 0

    @contextmanager
    def __call__(self, title: str) -> Iterator[None]:
        self.n += 1
        self.echo(f"[{self.n}/{STEPS}] {title}")
        start = time.perf_counter()
        yield
        elapsed = time.perf_counter() - start
        self.result.timings[title] = elapsed
        self.echo(f"      done in {elapsed:.1f} s")


def run_demo(
    out: str | Path,
    *,
    seed: int = 0,
    workers: int = 2,
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> DemoResult:
    """Run the whole chain into ``out`` (see the module docstring); resumable."""
    from emotions_data.annotation.server import start_server, stop_server
    from emotions_data.testing.corpus import make_corpus
    from emotions_data.testing.http import serve_directory

    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    root = out / "dataset"
    result = DemoResult(out=out)
    step = _Steps(echo, result)
    port = _corpus_port(out, seed)
    try:
        with step("generate the corpus and serve it on 127.0.0.1"):
            corpus = make_corpus(out / "corpus", seed=seed)
            counts = corpus["kind"].value_counts().to_dict()
            echo(f"      {len(corpus)} URLs: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
        with serve_directory(out / "corpus", port=port) as server:
            corpus["url"] = [server.url(p) for p in corpus["path"]]
            urls = corpus.drop(columns="path")
            urls_path = out / "urls.csv"
            atomic_write_text(
                urls_path, urls[["url", "platform", "true_label", "kind"]].to_csv(index=False)
            )
            result.artefacts["url list"] = urls_path
            _acquire(root, urls_path, workers, progress, step, echo, result)
            ls = start_server(root, media_root=root)
            _annotate(root, out, ls, seed, step, echo, result)
            _agreement(root, out, seed, step, echo, result)
            _variants(root, seed, step, echo, result)
            _baseline(root, out, seed, step, echo, result)
            _publish(root, out, corpus, server, seed, workers, progress, step, echo, result)
    finally:
        stopped = stop_server(root) if root.exists() else False
    with step("stop the servers"):
        echo(
            f"      Label Studio {'stopped' if stopped else 'was not running'}; corpus server closed"
        )
    echo(format_summary(result))
    atomic_write_text(out / "demo-summary.json", json.dumps(result.to_dict(), indent=1) + "\n")
    return result


def _acquire(
    root: Path,
    urls: Path,
    workers: int,
    progress: bool,
    step: _Steps,
    echo: Callable[[str], None],
    result: DemoResult,
) -> None:
    from emotions_data.ingest.fetch import fetch
    from emotions_data.ingest.prepare import PrepareConfig, prepare

    with step("fetch (yt-dlp) and prepare (probe, filters, dedup, normalise, cache)"):
        fetched = fetch(urls, root, workers=workers, progress=progress).to_dict()
        echo(f"      fetch: {fetched['by_status']} errors {fetched['by_error']}")
        result.figures["fetch"] = {k: fetched[k] for k in ("total", "downloaded", "skipped")}
        prepared = prepare(
            root, config=PrepareConfig(require_audio=True), workers=workers, progress=progress
        )
        summary = prepared.to_dict()
        echo(f"      prepare: {summary['by_status']} errors {summary['by_error']}")
        result.figures["videos"] = summary["by_status"]
        result.artefacts["videos manifest"] = root / "videos.parquet"
        result.artefacts["training cache"] = root / "cache"


def _annotate(
    root: Path,
    out: Path,
    ls: Any,
    seed: int,
    step: _Steps,
    echo: Callable[[str], None],
    result: DemoResult,
) -> None:
    from emotions_data.annotation.runner import Simulation, run_protocol
    from emotions_data.annotation.simulate import simulated_roster
    from emotions_data.schema.io import read_manifest

    with step("annotate: allocate 3 groups, primary, cross-checks, evaluations, expert, finalize"):
        roster_path = out / "roster.csv"
        if roster_path.exists():
            roster = pd.read_csv(roster_path, dtype={"annotator_id": str})
        else:
            roster = simulated_roster(
                groups=3, per_group=5, careless=1, adversarial=1, experts=1, seed=seed
            )
            atomic_write_text(roster_path, roster.to_csv(index=False))
        videos = read_manifest(root / "videos.parquet", "videos").df
        ok = videos[videos["status"] == "ok"]
        truth = pd.Series(ok["true_label"].astype(str).to_numpy(), index=ok["video_id"].astype(str))
        run = run_protocol(
            root, videos, roster, None, ls, simulate=Simulation(truth, roster, seed), seed=seed
        )
        for item in run.steps:
            if item["step"].startswith("evaluate") or item["step"] == "allocate":
                shown = {k: v for k, v in item.items() if k in ("step", "flagged", "moved")}
                echo(f"      {shown}")
        labels = read_manifest(run.labels_path or root / "labels.parquet", "labels").df
        match = (
            labels.set_index("video_id")["label"] == truth.reindex(labels["video_id"]).to_numpy()
        ).mean()
        result.figures["labels"] = {
            "videos labelled": len(labels),
            "expert decided": int((labels["method"] == "expert").sum()),
            "unresolved": len(run.unresolved),
            "agree with truth": round(float(match), 3),
        }
        echo(f"      labels: {result.figures['labels']}")
        result.artefacts["roster"] = roster_path
        result.artefacts["groups manifest"] = run.groups_path
        result.artefacts["annotations manifest"] = run.annotations_path
        result.artefacts["labels manifest"] = run.labels_path or root / "labels.parquet"


def _agreement(
    root: Path, out: Path, seed: int, step: _Steps, echo: Callable[[str], None], result: DemoResult
) -> None:
    from emotions_data.agreement.command import agreement_command
    from emotions_data.agreement.render import format_text

    with step(
        "agreement report (alpha, kappa, AC1, per class/annotator/group/stage, bootstrap CIs)"
    ):
        report_dir = out / "reports" / "agreement"
        # everyone who judged, removed annotators included: the demo shows the whole crowd
        report = agreement_command(
            root / "annotations.parquet",
            by=("class", "annotator", "group", "stage"),
            groups=root / "groups.parquet",
            include_removed=True,
            n_boot=200,
            seed=seed,
            report_dir=report_dir,
        ).report
        echo(format_text(report))
        data = report.to_dict()
        atomic_write_text(
            report_dir / "agreement.json", json.dumps(data, indent=1, default=str) + "\n"
        )
        result.figures["krippendorff_alpha"] = data["krippendorff_alpha"]
        result.artefacts["agreement report"] = report_dir


def _variants(
    root: Path, seed: int, step: _Steps, echo: Callable[[str], None], result: DemoResult
) -> None:
    from emotions_data.variants.build import build_variants, split_dataset

    with step("split and build-variants (full, balanced, test-oriented)"):
        labels, videos = root / "labels.parquet", root / "videos.parquet"
        split_dataset(labels, root / "split.parquet", videos_path=videos, seed=seed)
        built = build_variants(
            labels,
            root / "variants",
            videos_path=videos,
            split_path=root / "split.parquet",
            seed=seed,
        )
        for variant in built:
            sizes = (
                variant.frame["split"]
                .value_counts()
                .reindex(["train", "val", "test"], fill_value=0)
            )
            echo(
                f"      {variant.name}: {len(variant.frame)} videos, "
                + ", ".join(f"{name} {int(n)}" for name, n in sizes.items())
            )
            result.figures.setdefault("variants", {})[variant.name] = len(variant.frame)
        result.artefacts["split manifest"] = root / "split.parquet"
        result.artefacts["variants"] = root / "variants"


def _baseline(
    root: Path, out: Path, seed: int, step: _Steps, echo: Callable[[str], None], result: DemoResult
) -> None:
    from emotions_data.baselines.avcpnet.trainer import evaluate_checkpoint, fit

    with step("baseline train (AV-CPNet, tiny.yaml, CPU) and evaluate on the test split"):
        run_dir = out / "runs" / "avcpnet-tiny"
        variant = root / "variants" / "full.parquet"
        last = run_dir / "last.pt"
        fitted = fit(
            variant,
            root,
            BASELINES_DIR / "configs" / "tiny.yaml",
            run_dir,
            device="cpu",
            seed=seed,
            resume=last if last.exists() else None,
        )
        echo(
            f"      best epoch {fitted.best_epoch} on val: {fitted.select_metric} "
            f"{fitted.val.get(fitted.select_metric)}"
        )
        metrics = evaluate_checkpoint(
            fitted.best_checkpoint, variant, root, split="test", device="cpu"
        )
        shown = {k: metrics.get(k) for k in ("accuracy", "uar", "macro_f1", "weighted_f1")}
        echo(f"      test: {shown}")
        result.figures["test"] = shown
        result.artefacts["checkpoint"] = fitted.best_checkpoint
        result.artefacts["training run"] = run_dir


def _publish(
    root: Path,
    out: Path,
    corpus: pd.DataFrame,
    server: Any,
    seed: int,
    workers: int,
    progress: bool,
    step: _Steps,
    echo: Callable[[str], None],
    result: DemoResult,
) -> None:
    from emotions_data.release.hydrate import hydrate
    from emotions_data.release.publish import build_release
    from emotions_data.release.stats import write_stats
    from emotions_data.schema.io import read_manifest

    with step("stats, release (ids only) and hydrate from the release"):
        stats = write_stats(root, out / "reports" / "stats", seed=seed, n_boot=200)
        release = build_release(root, out / "release", with_media=False, seed=seed, n_boot=200)
        echo(f"      release rows: {release.rows}")
        # link rot: after the release, two labelled clips disappear from the "platforms"
        labelled = read_manifest(root / "labels.parquet", "labels").df["video_id"]
        videos = read_manifest(root / "videos.parquet", "videos").df.set_index("video_id")
        gone = sorted(videos.loc[labelled, "source_url"].astype(str))[:2]
        for url in gone:
            server.take_down(corpus.loc[corpus["url"] == url, "path"].iloc[0])
        echo(f"      taken down after the release (dead links): {len(gone)}")
        hydrated = hydrate(out / "release", out / "hydrated", workers=workers, progress=progress)
        report = hydrated.availability
        share = {k: report[k] for k in ("videos", "available", "dead", "changed", "share")}
        echo(f"      hydrate: {share}; complete variants: {report['complete_variants']}")
        result.figures["hydrate"] = share
        result.artefacts["stats report"] = stats.report
        result.artefacts["release"] = out / "release"
        result.artefacts["hydrated root"] = out / "hydrated"


def format_summary(result: DemoResult) -> str:
    width = max(len(k) for k in result.artefacts) if result.artefacts else 10
    lines = ["", "What was made, and where:"]
    for name, path in result.artefacts.items():
        try:
            shown = path.relative_to(result.out)
        except ValueError:
            shown = path
        lines.append(f"  {name:<{width}}  {result.out.name}/{shown}")
    total = sum(result.timings.values())
    lines.append(f"total time: {total:.0f} s")
    return "\n".join(lines)
