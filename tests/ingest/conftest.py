"""Generated clips served over loopback HTTP, fetched once per module where tests only read."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from emotions_data.testing.media import make_clip, make_truncated, reencode

# name -> how it is made; small and short so the whole ingest suite stays fast
CLIP = {"width": 160, "height": 288, "duration": 2.0, "fps": 10}


def faststart(src: Path, dst: Path) -> Path:
    """A copy with the index (moov) first, so a truncated copy still probes (but decodes short)."""
    args = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", str(src)]
    subprocess.run([*args, "-c", "copy", "-movflags", "+faststart", str(dst)], check=True)
    return dst


def make_site(folder: Path) -> dict[str, Path]:
    """The files a fake video site serves: good clips, reposts, broken and silent ones."""
    folder.mkdir(parents=True, exist_ok=True)
    made = {
        "card.mp4": make_clip(folder / "card.mp4", **CLIP),  # type: ignore[arg-type]
        "noise.mp4": make_clip(folder / "noise.mp4", source="noise", noise_seed=3, **CLIP),  # type: ignore[arg-type]
        "red.mp4": make_clip(folder / "red.mp4", source="color", color="red", motion=4, **CLIP),  # type: ignore[arg-type]
        "blue.mp4": make_clip(folder / "blue.mp4", source="color", color="blue", motion=4, **CLIP),  # type: ignore[arg-type]
        "silent.mp4": make_clip(
            folder / "silent.mp4",
            source="noise",
            noise_seed=5,
            audio=False,
            **CLIP,  # type: ignore[arg-type]
        ),
        "short.mp4": make_clip(
            folder / "short.mp4",
            source="noise",
            noise_seed=7,
            width=160,
            height=288,
            duration=0.5,
            fps=10,
        ),
    }
    # the same clip again under another URL (byte-identical) and re-encoded/resized (a repost)
    shutil.copy(made["card.mp4"], folder / "card-copy.mp4")
    made["card-copy.mp4"] = folder / "card-copy.mp4"
    made["card-repost.mp4"] = reencode(
        made["card.mp4"], folder / "card-repost.mp4", width=96, height=96
    )
    # no index at all: unreadable; index first but data cut: probes, decodes short
    made["truncated.mp4"] = make_truncated(made["noise.mp4"], folder / "truncated.mp4", 0.4)
    fast = faststart(
        make_clip(
            folder / "long.mp4",
            source="noise",
            noise_seed=9,
            width=160,
            height=288,
            duration=3.0,
            fps=10,
        ),
        folder / "long-fast.mp4",
    )
    made["cut.mp4"] = make_truncated(fast, folder / "cut.mp4", 0.5)
    return made


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("site")
    make_site(folder)
    return folder
