"""Run the installed emotions-data as a new user would, from a folder outside the checkout.

Called by scripts/check-wheel.sh with the fresh venv's python and that folder as the working
directory: doctor, agreement on a CSV with the default taxonomy, build-variants with the default
YAML, and baseline train with the bundled tiny config on a few generated clips. Exits non-zero
(with the failing command's output) at the first thing that is wrong.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]
CLIPS_PER_CLASS = 2


def run(*args: str) -> str:
    """``emotions-data ARGS`` from the venv next to this interpreter; its stdout."""
    exe = Path(sys.executable).parent / "emotions-data"
    started = time.monotonic()
    proc = subprocess.run([str(exe), *args], capture_output=True, text=True, check=False)
    took = time.monotonic() - started
    print(f"[check-wheel] emotions-data {' '.join(args)}: exit {proc.returncode}, {took:.1f} s")
    if proc.returncode != 0:
        sys.exit(f"failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def check_installed_copy() -> None:
    import emotions_data
    from emotions_data.schema.resources import ANNOTATION_DIR

    where = Path(emotions_data.__file__).resolve()
    if CHECKOUT in where.parents:
        sys.exit(f"emotions_data was imported from the checkout ({where}), not the wheel")
    if ANNOTATION_DIR.is_symlink() or not (ANNOTATION_DIR / "variants.yaml").is_file():
        sys.exit(f"the wheel carries no bundled annotation files at {ANNOTATION_DIR}")
    print(f"[check-wheel] emotions_data from {where.parent}")


def check_agreement() -> None:
    from emotions_data.testing.manifests import synthetic_crowd

    crowd, _truth = synthetic_crowd(
        40, n_annotators=12, max_judgements=5, accuracy_range=(0.7, 0.95), seed=1
    )
    crowd.to_csv("crowd.csv", index=False)
    report = json.loads(run("agreement", "crowd.csv", "--json", "-"))
    # the CSV names no taxonomy: the bundled default must have been found
    if report.get("taxonomy") != "emotions6" or report.get("n_items") != 40:
        sys.exit(f"unexpected agreement report: {json.dumps(report)[:400]}")
    if not 0.3 < float(report["krippendorff_alpha"]) < 1.0:
        sys.exit(f"implausible alpha for a 70-95 % accurate crowd: {report['krippendorff_alpha']}")


def dataset_root(root: Path) -> None:
    """Fetch generated clips from a loopback server, prepare them and label them by class."""
    import pandas as pd

    from emotions_data.schema import load_taxonomy, write_manifest
    from emotions_data.testing.http import serve_directory
    from emotions_data.testing.media import make_class_clip

    classes = load_taxonomy().classes
    site = Path("site")
    names = []
    for index, label in enumerate(classes):
        for i in range(CLIPS_PER_CLASS):
            name = f"{label}-{i}.mp4"
            make_class_clip(site / name, index, width=72, height=128, duration=1.5, variant=i)
            names.append((name, label))
    with serve_directory(site) as server:
        urls = pd.DataFrame(
            {
                "url": [server.url(n) for n, _ in names],
                "platform": [("douyin", "tiktok")[i % 2] for i in range(len(names))],
            }
        )
        urls.to_csv("urls.csv", index=False)
        run("fetch", "urls.csv", "--out", str(root), "--workers", "2", "--no-progress")
    run("prepare", "--root", str(root), "--workers", "2", "--no-progress")
    videos = pd.read_parquet(root / "videos.parquet")
    by_url = dict(zip(urls["url"], [label for _, label in names], strict=True))
    ok = videos[videos["status"] == "ok"]
    if len(ok) != len(names):
        sys.exit(f"fetch/prepare kept {len(ok)} of {len(names)} clips")
    labels = pd.DataFrame(
        {
            "video_id": ok["video_id"],
            "label": ok["source_url"].map(by_url),
            "method": "majority",
            "n_votes": 3,
            "support": 1.0,
            "entropy": 0.0,
            "confidence": 1.0,
            "decided_stage": "primary",
            "expert_changed": False,
        }
    )
    write_manifest(labels, root / "labels.parquet", "labels", created_by="check-wheel")


def main() -> None:
    check_installed_copy()
    run("doctor", "--root", ".")
    check_agreement()
    root = Path("data")
    dataset_root(root)
    run("split", "--root", str(root), "--ratios", "0.5,0.25,0.25")
    run("build-variants", "--root", str(root))
    variants = sorted(p.stem for p in (root / "variants").glob("*.parquet"))
    if variants != ["balanced", "full", "test-oriented"]:
        sys.exit(f"build-variants wrote {variants}")
    out = json.loads(
        run(
            "baseline",
            "train",
            "--variant",
            str(root / "variants" / "full.parquet"),
            "--root",
            str(root),
            "--config",
            "tiny",
            "--device",
            "cpu",
            "--epochs",
            "1",
            "--out",
            "runs/tiny",
            "--json",
            "-",
        )
    )
    if not Path(out["best_checkpoint"]).is_file():
        sys.exit(f"baseline train wrote no checkpoint: {out}")
    shutil.rmtree("site")
    print("[check-wheel] the installed package works from", Path.cwd())


if __name__ == "__main__":
    main()
