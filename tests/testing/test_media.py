from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from emotions_data.testing.media import make_class_clip, make_clip, make_truncated, reencode

pytestmark = pytest.mark.ffmpeg


def probe(path: Path) -> dict[str, object]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    return {"rc": out.returncode, **(json.loads(out.stdout) if out.stdout else {})}


def test_portrait_clip_with_audio(tmp_path: Path) -> None:
    info = probe(make_clip(tmp_path / "p.mp4", width=144, height=256, duration=1.0, fps=10))
    kinds = {s["codec_type"]: s for s in info["streams"]}  # type: ignore[attr-defined]
    assert kinds["video"]["width"] == 144 and kinds["video"]["height"] == 256
    assert kinds["audio"]["codec_name"] == "aac"


def test_landscape_clip_without_audio(tmp_path: Path) -> None:
    info = probe(make_clip(tmp_path / "l.mp4", width=256, height=144, audio=False, duration=1.0))
    assert [s["codec_type"] for s in info["streams"]] == ["video"]  # type: ignore[attr-defined]


def test_class_clips_differ_and_reencode_resizes(tmp_path: Path) -> None:
    a = make_class_clip(tmp_path / "a.mp4", 0, duration=1.0)
    b = make_class_clip(tmp_path / "b.mp4", 1, duration=1.0)
    assert a.read_bytes() != b.read_bytes()
    r = reencode(a, tmp_path / "r.mp4", width=64, height=64)
    assert probe(r)["streams"][0]["width"] == 64  # type: ignore[index]


def test_truncated_clip_is_unreadable(tmp_path: Path) -> None:
    src = make_clip(tmp_path / "s.mp4", duration=1.0)
    bad = make_truncated(src, tmp_path / "t.mp4", keep_fraction=0.2)
    assert bad.stat().st_size < src.stat().st_size
    info = probe(bad)
    assert info["rc"] != 0 or not info.get("streams")
