"""Textured generated sources and the reposts platforms make of them (tests and benchmarks).

A source is seeded "game of life" texture, scaled with hard edges, tinted and drifting, with
film grain: detailed like camera footage, and a look-alike is the same generator with another
seed. ``make_repost`` applies one of ``TRANSFORMS`` (or several, in order) with real ffmpeg.
"""

from __future__ import annotations

from pathlib import Path

from emotions_data.schema.atomic import atomic_path
from emotions_data.testing.media import _run, ffmpeg_binary

#: The nine things platforms do to a reposted video (issue 17's table).
TRANSFORMS = (
    "reencode",  # 3/4 of the size (540x960 from 720x1280), 600 kb/s
    "speed",  # 1.1x
    "colour",  # brightness / contrast / saturation shift
    "overlay",  # a logo box and a username line drawn over the picture
    "intro",  # a 1 s title card before the video
    "trim",  # starts 2 s later
    "bars",  # letterbox / pillarbox into the other orientation, black or blurred bars
    "crop",  # 10 % cut from every side, rescaled to the full size
    "mirror",  # horizontal flip
)
#: Pairs of transformations applied one after the other.
PAIRS = (
    ("crop", "mirror"),
    ("bars", "reencode"),
    ("overlay", "intro"),
    ("speed", "colour"),
    ("trim", "bars"),
    ("mirror", "overlay"),
    ("crop", "colour"),
    ("intro", "reencode"),
    ("bars", "mirror"),
)


def make_source(
    path: str | Path,
    seed: int,
    *,
    width: int = 720,
    height: int = 1280,
    duration: float = 8.0,
    fps: int = 15,
    crf: int = 18,
) -> Path:
    """A textured, moving, seeded clip (no audio); other seeds give look-alikes."""
    # blobs of a seeded "game of life" that step once a second and cross-fade, drifting
    # sideways, with film grain: coherent in time like footage, detailed at every scale
    cells_w, cells_h = (16, 28) if height >= width else (28, 16)
    tint = 0.2 + 0.6 * ((seed * 37) % 100) / 100.0
    video = (
        f"life=size={cells_w}x{cells_h}:seed={seed}:rate=1:ratio=0.45:mold=4"
        f":life_color=#{int(255 * tint):02x}c070:death_color=#203040:mold_color=#705030,"
        f"scale={width}:{height}:flags=bicubic,fps={fps},tmix=frames={fps},"
        f"scroll=h={0.002 + 0.001 * (seed % 3):.4f}:v={0.001 * (seed % 2):.4f},"
        f"noise=alls=14:allf=t:all_seed={seed},format=yuv420p"
    )
    args = [ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi"]
    args += ["-i", video, "-t", f"{duration}", "-c:v", "libx264", "-preset", "ultrafast"]
    args += ["-crf", str(crf), "-g", str(fps)]
    with atomic_path(path, suffix=".mp4") as tmp:
        _run([*args, "-f", "mp4", str(tmp)])
    return Path(path)


def _filter(kind: str, width: int, height: int, index: int) -> str:
    """The filter graph ([0:v] in, [v] out) of one transformation of a width x height input."""
    if kind == "reencode":
        # 3/4 of the size: 540x960 from 720x1280
        return f"[0:v]scale={width * 3 // 8 * 2}:{height * 3 // 8 * 2}[v]"
    if kind == "speed":
        return "[0:v]setpts=PTS/1.1[v]"
    if kind == "colour":
        return "[0:v]eq=brightness=0.08:contrast=1.2:saturation=1.4[v]"
    if kind == "overlay":
        bw, bh = width // 5, height // 12
        user = ",".join(
            f"drawbox=x={width // 10 + i * width // 24}:y={height * 5 // 6}"
            f":w={width // 30}:h={height // 40}:color=white:t=fill"
            for i in range(8)
        )
        return (
            f"[0:v]drawbox=x={width // 20}:y={height // 20}:w={bw}:h={bh}"
            f":color=white@0.85:t=fill,{user}[v]"
        )
    if kind == "intro":
        card = f"color=c=0x202020:size={width}x{height}:duration=1:rate=15"
        logo = f"drawbox=x={width // 3}:y={height // 3}:w={width // 3}:h={height // 6}:color=red:t=fill"
        return (
            f"{card},{logo},format=yuv420p,setsar=1[card];"
            "[0:v]format=yuv420p,setsar=1[main];[card][main]concat=n=2:v=1:a=0[v]"
        )
    if kind == "trim":
        return "[0:v]trim=start=2,setpts=PTS-STARTPTS[v]"
    if kind == "bars":
        w, h = height, width  # into the other orientation
        if index % 2 == 0:
            return (
                f"[0:v]scale={w}:{h}:force_original_aspect_ratio=decrease,"
                f"pad={w}:{h}:(ow-iw)/2:(oh-ih)/2:color=black,setsar=1[v]"
            )
        return (
            f"[0:v]split[a][b];[a]scale={w}:{h}:force_original_aspect_ratio=increase,"
            f"crop={w}:{h},boxblur=20:3[bg];"
            f"[b]scale={w}:{h}:force_original_aspect_ratio=decrease[fg];"
            f"[bg][fg]overlay=(W-w)/2:(H-h)/2,setsar=1[v]"
        )
    if kind == "crop":
        return f"[0:v]crop=iw*0.8:ih*0.8,scale={width}:{height},setsar=1[v]"
    if kind == "mirror":
        return "[0:v]hflip[v]"
    raise ValueError(f"unknown transformation {kind!r}; allowed: {', '.join(TRANSFORMS)}")


def _size(path: Path) -> tuple[int, int]:
    from emotions_data.ingest.probe import probe

    info = probe(path)
    return info.width, info.height


def make_repost(
    src: str | Path, dst: str | Path, kinds: str | tuple[str, ...], *, index: int = 0
) -> Path:
    """``dst``: ``src`` after the transformation(s) ``kinds`` (one ffmpeg run each).

    ``index`` picks the variant where there are two (even: black bars, odd: blurred bars).
    """
    steps = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    current, dst = Path(src), Path(dst)
    for n, kind in enumerate(steps):
        width, height = _size(current)
        target = dst if n == len(steps) - 1 else dst.with_name(f".{dst.stem}.step{n}.mp4")
        args = [ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(current)]
        args += ["-filter_complex", _filter(kind, width, height, index), "-map", "[v]", "-an"]
        args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
        args += ["-b:v", "600k"] if kind == "reencode" else ["-crf", "23"]
        with atomic_path(target, suffix=".mp4") as tmp:
            _run([*args, "-f", "mp4", str(tmp)])
        if n > 0:
            current.unlink(missing_ok=True)
        current = target
    return dst
