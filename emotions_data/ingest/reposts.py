"""Repost search over per-second frame hashes (``ingest.framehash``): candidates, alignment, groups.

1. **Candidates without all pairs.** Locality-sensitive hashing by bit sampling: ``BANDS``
   keys of ``BAND_BITS`` fixed random bits of each 256-bit hash. The index holds every video's
   valid samples at one a second, in every crop scale; every video then queries it with its
   samples (two a second) as they are and mirrored. Each key collision is checked on the spot
   with the full Hamming distance, so only pairs of videos that share at least one truly close
   frame go on: cost is linear in the number of samples, never in the number of pairs.
   Plain samples (smooth gradients, whose DCT bits follow grain) also query an index of
   every video's coarse-picture hashes (``framehash.plain_hashes``).
2. **Alignment.** For a candidate pair, the matrix of distances between all their samples
   (the best crop scale on either side, mirrored or not) is thresholded at ``max_distance``;
   a line ``j = speed * i + offset`` (speed 0.8-1.25: sped-up reposts) is fitted by voting,
   and the pair is a repost when the samples on that line cover at least ``min_share`` of the
   shorter video (so an intro, a trim or a clip cut from a longer video still match).
   Plain pairs the hash cannot align are aligned on their coarse thumbnails (``align_plain``).
3. **Verification** (where the per-sample thumbnails are at hand, ``ingest.aligned``): the
   aligned thumbnails must correlate, and so must what changes in them, so that two shots
   of one place (a static camera filmed twice, consecutive scenes of one camera), whose
   frames hash alike, are not taken for one video.
4. **Groups** are the connected components of the reposts found (union-find). The search
   aligns a candidate pair only while its videos are not yet linked: enough pairs to link
   every group, the same groups as all pairs would give.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from emotions_data.ingest.aligned import (
    CoarseViews,
    align_thumbs,
    coarse,
    coarse_similarity,
    coarse_views,
    likeness,
    line_pairs,
)
from emotions_data.ingest.framehash import (
    CENTRE,
    CROP_SCALES,
    MIRROR,
    MIRROR_CENTRE,
    WORDS,
    VideoHashes,
)
from emotions_data.unionfind import Components

#: Thumbnails of a video by its index (None where its hash file has none).
ThumbSource = Callable[[int], npt.NDArray[np.uint8] | None]

BANDS = 16
BAND_BITS = 20
#: A key shared by more videos than this is a common frame (a platform's end card): skipped.
MAX_BUCKET = 64
_OFFSETS_TRIED = 5
#: Speeds tried, closest to 1 first: a tie keeps the plainer alignment.
_SPEEDS = np.array([1.0, 0.95, 1.05, 0.9, 1.1, 0.85, 1.15, 0.8, 1.2, 1.25])
_BAND_POSITIONS = np.random.default_rng(17).integers(0, 256, size=(BANDS, BAND_BITS))


@dataclass(frozen=True)
class MatchSettings:
    max_distance: int = 60  # bits of 256 for two samples to show the same picture
    min_share: float = 0.5  # of the shorter video's valid samples on the alignment line
    min_samples: int = 2  # and at least this many
    #: samples with less detail than this (mean gradient, ``framehash``) look alike more
    #: easily (flat colour, a few shapes): they must match within ``plain_distance``
    plain_detail: float = 8.0
    plain_distance: int = 16
    #: where thumbnails can check a match (``find_reposts`` given them), plain samples may
    #: match within this, and such a pair must then look and move alike more closely than
    #: footage must (``aligned.Likeness.close``): a squashed or re-framed copy of a flat
    #: clip moves its hash bits up to 58 (the demo's) while its pictures correlate 0.99
    plain_checked_distance: int = 60


@dataclass(frozen=True)
class PairMatch:
    """How video ``a`` matches video ``b`` (indices into the list given to ``find_reposts``)."""

    a: int
    b: int
    share: float  # share of the shorter video's valid samples aligned
    matched: int  # aligned samples
    speed: float  # b's sample index ~ speed * a's + offset
    offset: float
    mirrored: bool
    a_lead: int  # samples of a before the aligned part
    b_lead: int
    #: b's field of view over a's (side): below 1 when b is a crop of a (hash crop scales;
    #: ``aligned.align_thumbs`` refines it)
    side_ratio: float = 1.0
    #: b's samples per sample of a fitted (least squares) through each aligned sample's
    #: closest partner: the line's ``speed`` keeps 1 when a faster copy's line stays within
    #: a sample of it (a 1.1x copy of 5 s), this says how fast it really plays
    fitted_speed: float = 1.0
    #: b's field of view over a's as the aligned thumbnails showed it (``verify``; None
    #: before): what the copies are compared at again, without the search
    view_ratio: float | None = None


def band_keys(hashes: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
    """(M, BANDS) int64 keys: band number in the high bits, the sampled bits below."""
    out = np.empty((len(hashes), BANDS), dtype=np.int64)
    one = np.uint64(1)
    for band in range(BANDS):
        key = np.zeros(len(hashes), dtype=np.uint64)
        for k, pos in enumerate(_BAND_POSITIONS[band].tolist()):
            bit = (hashes[:, pos // 64] >> np.uint64(pos % 64)) & one
            key |= bit << np.uint64(k)
        out[:, band] = key.astype(np.int64) | (band << BAND_BITS)
    return out


#: Plain samples whose coarse pictures' SimHashes (``framehash.plain_hashes``) differ in at
#: most this many bits are candidates (a correlation of about 0.83; ``align_plain`` then
#: asks for 0.9 on a line).
_PLAIN_BITS = 48


def _rows(
    tables: Sequence[tuple[npt.NDArray[np.uint64] | None, npt.NDArray[np.bool_]]],
    variants: Sequence[int],
    step: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint64]]:
    """(video index per row, hash per row) of the picked samples (every ``step``-th) of
    each video's (hashes (N, variants, WORDS) or None, picked (N,)) ``tables``."""
    vids: list[npt.NDArray[np.int64]] = []
    hashes: list[npt.NDArray[np.uint64]] = []
    for v, (table, picked_mask) in enumerate(tables):
        picked = np.flatnonzero(picked_mask)
        picked = picked[picked % step == 0]
        if table is None or len(picked) == 0:
            continue
        block = table[picked][:, list(variants)].reshape(-1, WORDS)
        vids.append(np.full(len(block), v, dtype=np.int64))
        hashes.append(block)
    if not vids:
        return np.zeros(0, np.int64), np.zeros((0, WORDS), np.uint64)
    return np.concatenate(vids), np.concatenate(hashes)


def _close_pairs(
    index: tuple[npt.NDArray[np.int64], npt.NDArray[np.uint64]],
    query: tuple[npt.NDArray[np.int64], npt.NDArray[np.uint64]],
    n: int,
    max_distance: int,
) -> set[tuple[int, int]]:
    """Pairs (a < b) of the ``n`` videos with a query row within ``max_distance`` of an index
    row (banded keys, each collision checked on the full distance)."""
    (index_vid, index_hash), (query_vid, query_hash) = index, query
    found: set[tuple[int, int]] = set()
    if len(index_vid) == 0 or len(query_vid) == 0:
        return found
    index_keys, query_keys = band_keys(index_hash), band_keys(query_hash)
    for band in range(BANDS):
        # one row per (key, video) on the index side: a still video repeats its keys
        codes = np.unique(index_keys[:, band].astype(np.int64) * n + index_vid)
        order = np.argsort(index_keys[:, band], kind="stable")
        keys_sorted = index_keys[order, band]
        distinct_keys, per_key = np.unique(codes // n, return_counts=True)
        common = distinct_keys[per_key > MAX_BUCKET]
        # sorted queries: searchsorted then walks the index in order (cache-friendly)
        q_order = np.argsort(query_keys[:, band])
        q = query_keys[q_order, band]
        lo = np.searchsorted(keys_sorted, q, side="left")
        hi = np.searchsorted(keys_sorted, q, side="right")
        counts = hi - lo
        if len(common):
            counts[np.isin(q, common)] = 0
        total = int(counts.sum())
        if total == 0:
            continue
        q_rows = np.repeat(q_order, counts)
        starts = np.repeat(lo - np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
        i_rows = order[starts + np.arange(total)]
        a, b = query_vid[q_rows], index_vid[i_rows]
        keep = a != b
        q_rows, i_rows, a, b = q_rows[keep], i_rows[keep], a[keep], b[keep]
        dist = np.bitwise_count(query_hash[q_rows] ^ index_hash[i_rows]).sum(axis=1)
        close = dist <= max_distance
        lo_v, hi_v = np.minimum(a[close], b[close]), np.maximum(a[close], b[close])
        for code in np.unique(lo_v * n + hi_v).tolist():
            found.add((code // n, code % n))
    return found


def candidate_pairs(
    videos: Sequence[VideoHashes], max_distance: int, plain_detail: float | None = None
) -> set[tuple[int, int]]:
    """Pairs (a < b) of videos with at least one pair of samples within ``max_distance``;
    given ``plain_detail``, also those where a plain sample (less detail than that) has a
    coarse picture like one of the other video's (within ``_PLAIN_BITS``; the other sample
    may have detail: a logo drawn over a gradient adds some)."""
    n = len(videos)
    dct = [(video.hashes, video.valid) for video in videos]
    found = _close_pairs(
        _rows(dct, range(len(CROP_SCALES)), step=2),
        _rows(dct, (0, MIRROR), step=1),
        n,
        max_distance,
    )
    # the smallest centre crops against each other, as shown and mirrored (one a second
    # each side): a logo box and a username line over a busy texture (the cells automaton)
    # move 56-98 bits of the whole picture's hash, 20-54 of its centre's
    centres = _rows(dct, (CENTRE,), step=2)
    found |= _close_pairs(centres, _rows(dct, (CENTRE, MIRROR_CENTRE), step=2), n, max_distance)
    if plain_detail is not None:
        every = [(video.plain, video.valid) for video in videos]
        plain = [(video.plain, video.valid & (video.detail < plain_detail)) for video in videos]
        query = _rows(plain, (0, 1), step=1)
        if len(query[0]):  # most corpora have no plain sample: no index to build
            found |= _close_pairs(_rows(every, (0,), step=2), query, n, _PLAIN_BITS)
    return found


def _distances(x: npt.NDArray[np.uint64], y: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
    """(len(x), len(y)) Hamming distances of (·, WORDS) hashes."""
    return np.asarray(np.bitwise_count(x[:, None, :] ^ y[None, :, :]).sum(axis=2), dtype=np.int64)


#: Colours this close (grey levels of R - Y, B - Y) always agree (grey or pale pictures)...
_PALE = 12.0
#: ...else the hues may differ by this much (cosine; a colour-graded repost stays close)...
_HUE_COS = float(np.cos(np.radians(40.0)))
#: ...and the saturation by this factor.
_SATURATION_RATIO = 2.5


def _same_colours(
    ca: npt.NDArray[np.float32], cb: npt.NDArray[np.float32]
) -> npt.NDArray[np.bool_]:
    """(len(ca), len(cb)): whether two samples' mean colours can be the same picture's."""
    na, nb = np.linalg.norm(ca, axis=1)[:, None], np.linalg.norm(cb, axis=1)[None, :]
    pale = np.maximum(na, nb) < _PALE
    cos = (ca @ cb.T) / np.maximum(na * nb, 1e-6)
    ratio = np.maximum(na, nb) / np.maximum(np.minimum(na, nb), 1e-6)
    return np.asarray(pale | ((cos >= _HUE_COS) & (ratio <= _SATURATION_RATIO)))


def _pair_matrix(
    a: VideoHashes, b: VideoHashes, mirrored: bool, settings: MatchSettings
) -> npt.NDArray[np.int64]:
    """Best distance per (sample of a, sample of b) over the crop scales of either side."""
    whole_a = a.hashes[:, MIRROR if mirrored else 0]
    whole_b = b.hashes[:, MIRROR if mirrored else 0]
    best: npt.NDArray[np.int64] | None = None
    for scale in range(len(CROP_SCALES)):
        # a as shown (or mirrored) against b's crop, and a's crop against b (or b mirrored)
        for d in (_distances(whole_a, b.hashes[:, scale]), _distances(a.hashes[:, scale], whole_b)):
            best = d if best is None else np.minimum(best, d)
    assert best is not None
    # the centres alone: what a copy draws near its edges is left out
    centre_b = b.hashes[:, MIRROR_CENTRE if mirrored else CENTRE]
    best = np.minimum(best, _distances(a.hashes[:, CENTRE], centre_b))
    best[~_same_colours(a.chroma, b.chroma)] = 1 << 20
    plain = np.minimum(a.detail[:, None], b.detail[None, :]) < settings.plain_detail
    best[plain & (best > settings.plain_distance)] = 1 << 20
    best[~a.valid, :] = 1 << 20
    best[:, ~b.valid] = 1 << 20
    return best


def _side_ratio(
    a: VideoHashes,
    b: VideoHashes,
    i: npt.NDArray[np.int64],
    j: npt.NDArray[np.int64],
    mirrored: bool,
) -> float:
    """b's field of view over a's from the crop scale that matches the aligned samples best."""
    whole_a = a.hashes[i, MIRROR if mirrored else 0]
    whole_b = b.hashes[j, MIRROR if mirrored else 0]
    best, ratio = None, 1.0
    for k, scale in enumerate(CROP_SCALES):
        # a as shown against b's crop: a is the crop (b shows more); and the other way round
        for d, r in (
            (np.bitwise_count(whole_a ^ b.hashes[j, k]).sum(axis=1), 1.0 / scale),
            (np.bitwise_count(a.hashes[i, k] ^ whole_b).sum(axis=1), scale),
        ):
            mean = float(d.mean())
            if best is None or mean < best - 1e-9:
                best, ratio = mean, r
    return ratio


#: A line with as many samples as the best so far, at the same speed, replaces it only when
#: its samples are on average this many bits closer.
_TIE_BITS = 4.0
#: Coarse thumbnails of two copies of a plain picture correlate at least this much where
#: they show one moment (``align_plain``; a gradient's sped-up copy: 0.93-0.98 on its line).
_PLAIN_SIMILARITY = 0.9
#: A plain pair matched on that weaker evidence needs this many aligned samples: two flat
#: class clips of 1.5 s (``scripts/check_wheel.py``) shared two samples, a colour and a shape.
_PLAIN_MIN_SAMPLES = 3
#: ...and a pair aligned on the coarse pictures alone this share of the shorter video: two
#: smooth gradients of one kind (circular, other colours) align over a crop scale and a
#: speed for half their samples (0.50-0.56), a copy's coarse pictures all along (1.0)
_PLAIN_MIN_SHARE = 0.8


def _line_cost(capped: npt.NDArray[np.int64], speed: float, offset: float) -> float:
    """Mean distance (capped) of the samples exactly on the line j = speed * i + offset."""
    i = np.arange(capped.shape[0])
    j = np.rint(speed * i + offset).astype(np.int64)
    inside = (j >= 0) & (j < capped.shape[1])
    return float(capped[i[inside], j[inside]].mean()) if inside.any() else float("inf")


def _fit_line(
    matrices: Sequence[tuple[bool, npt.NDArray[np.int64]]],
    max_distance: int,
    shorter: int,
    ia: int,
    ib: int,
    *,
    speed_ties: bool = False,
) -> PairMatch | None:
    """The line ``j = speed * i + offset`` through the most sample pairs within
    ``max_distance`` of one of the (mirrored, distance matrix) ``matrices``; ``speed_ties``:
    another speed through as many samples wins when its samples are closer (else the
    plainer alignment stays)."""
    best: PairMatch | None = None
    best_cost = float("inf")
    for mirrored, d in matrices:
        i, j = np.nonzero(d <= max_distance)
        if len(i) == 0:
            continue
        lines = _candidate_lines(i, j, d.shape)
        capped = np.minimum(d, max_distance + 1)
        for k, (speed, offset) in enumerate(lines.speed_offset):
            matched = int(lines.matched[k])
            if best is not None and matched < best.matched:
                continue
            cost = _line_cost(capped, speed, offset)
            # as many samples at the same speed: the offset through the closer samples (a
            # slow shot matches its neighbours one sample off too), by a clear margin;
            # another speed with as many samples never wins (the plainer alignment)
            if (
                best is not None
                and matched == best.matched
                and ((speed != best.speed and not speed_ties) or cost >= best_cost - _TIE_BITS)
            ):
                continue
            best_cost = cost
            best = PairMatch(
                a=ia,
                b=ib,
                share=matched / shorter,
                matched=matched,
                speed=speed,
                offset=offset,
                mirrored=mirrored,
                a_lead=int(lines.a_lead[k]),
                b_lead=int(lines.b_lead[k]),
            )
    return best


@dataclass(frozen=True)
class _Lines:
    """The lines ``_fit_line`` weighs for one matrix, in the order it weighs them."""

    speed_offset: list[tuple[float, float]]
    matched: npt.NDArray[np.int64]  # min(distinct i, distinct j) of the close pairs on it
    a_lead: npt.NDArray[np.int64]  # its first sample of a, and of b
    b_lead: npt.NDArray[np.int64]


def _candidate_lines(
    i: npt.NDArray[np.int64], j: npt.NDArray[np.int64], shape: tuple[int, ...]
) -> _Lines:
    """Per speed of ``_SPEEDS``, the ``_OFFSETS_TRIED`` offsets most voted by the close
    sample pairs (i, j) (ties: the smaller offset first), with what is on each line; all
    speeds at once (one speed at a time, ``np.unique`` and the counts per line were most of
    the search's hash alignment)."""
    residual = j[None, :] - _SPEEDS[:, None] * i[None, :]  # (speeds, pairs)
    rounded = np.rint(residual).astype(np.int64)
    low = int(rounded.min())
    span = int(rounded.max()) - low + 1
    rows = np.arange(len(_SPEEDS))[:, None]
    votes = np.bincount((rows * span + rounded - low).ravel(), minlength=len(_SPEEDS) * span)
    votes = votes.reshape(len(_SPEEDS), span)
    # np.unique's offsets are ascending and a stable sort keeps them so among equal votes
    top = np.argsort(-votes, axis=1, kind="stable")[:, :_OFFSETS_TRIED]
    top_votes = np.take_along_axis(votes, top, axis=1)
    speed_of, rank = np.nonzero(top_votes > 0)  # row-major: speed by speed, best offset first
    offsets = (top[speed_of, rank] + low).astype(np.float64)
    on_line = np.abs(residual[speed_of] - offsets[:, None]) <= 1.0  # (lines, pairs)
    line_of, pair = np.nonzero(on_line)
    seen_i = np.zeros((len(offsets), shape[0]), dtype=bool)
    seen_j = np.zeros((len(offsets), shape[1]), dtype=bool)
    seen_i[line_of, i[pair]] = True
    seen_j[line_of, j[pair]] = True
    matched = np.minimum(seen_i.sum(axis=1), seen_j.sum(axis=1))
    # every line has at least the pair that voted for it (within 0.5 of its offset)
    a_lead = np.argmax(seen_i, axis=1)
    b_lead = np.argmax(seen_j, axis=1)
    return _Lines(
        speed_offset=[
            (float(_SPEEDS[s]), float(o)) for s, o in zip(speed_of, offsets, strict=True)
        ],
        matched=matched,
        a_lead=a_lead,
        b_lead=b_lead,
    )


#: Aligned samples needed to fit the speed (else the line's is kept), each closer to its
#: partner than to the partner's neighbours by this many bits (a slow shot's are not).
_FIT_SAMPLES = 4
_FIT_MARGIN = 8


def _fitted_speed(d: npt.NDArray[np.int64], best: PairMatch, max_distance: int) -> float:
    """The slope through each sample of a's closest partner near ``best``'s line, from the
    samples whose closest partner is clear (``_FIT_MARGIN`` closer than the next: a slow
    shot matches its neighbours nearly alike, and its partners would only add noise)."""
    xs: list[float] = []
    ys: list[float] = []
    for i in range(d.shape[0]):
        centre = best.speed * i + best.offset
        if not 0.0 <= centre <= d.shape[1] - 1:
            continue  # a's samples beyond b's ends (a trim) have no partner to fit
        lo = max(0, int(np.floor(centre - 1.0)))
        hi = min(d.shape[1], int(np.ceil(centre + 1.0)) + 1)
        row = d[i, lo:hi]
        k = int(np.argmin(row))
        rest = np.delete(row, k)
        if row[k] > max_distance or len(rest) == 0:
            continue
        if float(rest.min()) - float(row[k]) < _FIT_MARGIN:
            continue
        xs.append(float(i))
        ys.append(float(lo + k))
    if len(xs) < _FIT_SAMPLES or max(xs) == min(xs):
        return best.speed
    slope = float(np.polyfit(np.array(xs), np.array(ys), 1)[0])
    # a copy played faster is shorter: a slope the lengths contradict is noise (a copy
    # over blurred bars, its minima scattered a sample either way, as long as its source)
    lengths = d.shape[1] / d.shape[0]
    if (slope - 1.0) * (lengths - 1.0) <= 0.0:
        return best.speed
    return slope


def _shorter(a: VideoHashes, b: VideoHashes) -> int:
    return min(int(a.valid.sum()), int(b.valid.sum()))


def _accepted(best: PairMatch | None, settings: MatchSettings) -> bool:
    return (
        best is not None
        and best.matched >= settings.min_samples
        and best.share >= settings.min_share
    )


def align(
    a: VideoHashes, b: VideoHashes, settings: MatchSettings, ia: int = 0, ib: int = 1
) -> PairMatch | None:
    """The best temporal alignment of ``a`` and ``b``, or None when they are not reposts."""
    shorter = _shorter(a, b)
    if shorter == 0:
        return None
    matrices = [(m, _pair_matrix(a, b, m, settings)) for m in (False, True)]
    best = _fit_line(matrices, settings.max_distance, shorter, ia, ib)
    if best is None or not _accepted(best, settings):
        return None
    d = matrices[int(best.mirrored)][1]
    best = replace(best, fitted_speed=_fitted_speed(d, best, settings.max_distance))
    i, j = line_pairs(a.n, b.n, best.speed, best.offset, a.valid, b.valid)
    if len(i) == 0:
        return best
    return replace(best, side_ratio=_side_ratio(a, b, i, j, best.mirrored))


def align_plain(
    a: VideoHashes,
    b: VideoHashes,
    views_a: CoarseViews,
    views_b: CoarseViews,
    settings: MatchSettings,
    ia: int = 0,
    ib: int = 1,
) -> PairMatch | None:
    """The alignment of two copies of a plain picture from their coarse thumbnails
    (``aligned.coarse_similarity`` of their ``aligned.coarse_views`` at ``CROP_SCALES``),
    where the hash's bits follow grain: a smooth gradient sped up matches its source within
    60 bits only where the samples fall on the same frames."""
    shorter = _shorter(a, b)
    if shorter == 0:
        return None
    found = {m: coarse_similarity(views_a, views_b, m) for m in (False, True)}
    colours = _same_colours(a.chroma, b.chroma)
    matrices = []
    for mirrored, (similarity, _) in found.items():
        # each sample's best partner only: a slow picture is alike over a broad ridge
        best_here = (similarity >= similarity.max(axis=1, keepdims=True)) | (
            similarity >= similarity.max(axis=0, keepdims=True)
        )
        # the grey coarse pictures of two smooth gradients are alike wherever their shapes
        # are (two circular ones, other colours): their colours must agree too
        usable = best_here & a.valid[:, None] & b.valid[None, :] & colours
        d = np.where(usable, np.rint((1.0 - similarity) * 256), 1 << 20).astype(np.int64)
        matrices.append((mirrored, d))
    limit = round((1.0 - _PLAIN_SIMILARITY) * 256)
    # a slow picture matches along a broad ridge: at 6 s a 1.1x copy's line leaves the
    # plain one's by a sample only, so the closer line decides the speed too
    best = _fit_line(matrices, limit, shorter, ia, ib, speed_ties=True)
    if best is None or not _accepted(best, settings) or best.share < _PLAIN_MIN_SHARE:
        return None
    d = matrices[int(best.mirrored)][1]
    best = replace(best, fitted_speed=_fitted_speed(d, best, limit))
    i, j = line_pairs(a.n, b.n, best.speed, best.offset, a.valid, b.valid)
    ratios = found[best.mirrored][1]
    if len(i) == 0:
        return best
    values, counts = np.unique(ratios[i, j], return_counts=True)
    return replace(best, side_ratio=float(values[np.argmax(counts)]))


def verify(
    match: PairMatch, a: VideoHashes, b: VideoHashes, thumbs: ThumbSource, *, strict: bool = False
) -> tuple[bool | None, PairMatch]:
    """Whether the thumbnails confirm ``match`` (None when either video has none), and the
    match with the view ratio they showed (``PairMatch.view_ratio``). ``strict``: they must
    be alike as closely as plain pictures must (a match that needed
    ``plain_checked_distance``), compared coarse (``aligned.coarse``: what a plain picture
    has is coarse)."""
    ta, tb = thumbs(match.a), thumbs(match.b)
    if ta is None or tb is None:
        return None, match  # hash files of an older version: the hash alignment alone decides
    for line in _lines(match):
        i, j = line_pairs(a.n, b.n, line.speed, line.offset, a.valid, b.valid)
        pair = align_thumbs(ta, tb, i, j, line.mirrored, line.side_ratio)
        if pair is None:
            continue
        line = replace(line, view_ratio=pair.side_ratio)
        if strict:
            if likeness(coarse(pair, plain=True)).close:
                return True, line
            continue
        # a copy played at another speed shows moments between the source's samples: a
        # fine texture that moves (cells scrolling 4 px a frame) decorrelates within them at
        # full size (0.19), not coarse (0.83); coarse, the copies must move alike, since two
        # shots of one static camera look alike coarse but do not move alike (below 0.05)
        if likeness(pair).same_video or likeness(coarse(pair)).moves_alike:
            return True, line
    return False, match


#: The speed fitted through the aligned samples' closest partners differs from the line's by
#: this much or more: the line may be the wrong one (``_lines``).
_REFIT_SPEED = 0.05


def _lines(match: PairMatch) -> list[PairMatch]:
    """The alignments ``verify`` tries: ``match``'s line, then, where the fitted speed is
    another, the line at that speed through its first aligned samples. A fine texture that
    changes between samples (cells scrolling 4 px a frame) matches its 1.1x copy in the hash
    at the one moment both sample alike and, the pictures scrolled a little, at its
    neighbours: the vote ties over speeds, the plainer one (1.0) wins, and 0.5 s on, its
    line's pictures are a quarter second apart (coarse, 0.35-0.43 where the fitted line's
    0.50-0.64)."""
    if abs(match.fitted_speed - match.speed) < _REFIT_SPEED:
        return [match]
    speed = match.fitted_speed
    return [match, replace(match, speed=speed, offset=match.b_lead - speed * match.a_lead)]


def _has_plain(video: VideoHashes, settings: MatchSettings) -> bool:
    return bool((video.valid & (video.detail < settings.plain_detail)).any())


class PairMatcher:
    """What the search asks of one pair of ``videos``: the hash alignment, on plain pictures
    the stricter one or the coarse pictures' (``align_plain``), then, given ``thumbs``,
    verification. ``find_reposts`` asks it of candidate pairs, ``copy_edits.judge_group`` of
    the pairs of a group the search did not need."""

    def __init__(
        self,
        videos: Sequence[VideoHashes],
        settings: MatchSettings,
        thumbs: ThumbSource | None,
    ) -> None:
        self.videos, self.settings, self.thumbs = videos, settings, thumbs
        self.checked = replace(settings, plain_distance=settings.plain_checked_distance)
        self._views: dict[int, CoarseViews | None] = {}  # a video is in many pairs

    def _views_of(self, index: int) -> CoarseViews | None:
        if index not in self._views:
            small = self.thumbs(index) if self.thumbs is not None else None
            self._views[index] = None if small is None else coarse_views(small, CROP_SCALES)
        return self._views[index]

    def match(self, ia: int, ib: int) -> PairMatch | None:
        """How videos ``ia`` and ``ib`` align, when they are reposts of each other."""
        a, b, settings = self.videos[ia], self.videos[ib], self.settings
        match, strict = align(a, b, settings, ia, ib), False
        if (
            match is None
            and self.thumbs is not None
            and (_has_plain(a, settings) or _has_plain(b, settings))
        ):
            match, strict = align(a, b, self.checked, ia, ib), True
            if match is None:
                # the hash's bits follow grain: the coarse pictures align instead
                va, vb = self._views_of(ia), self._views_of(ib)
                if va is not None and vb is not None:
                    match = align_plain(a, b, va, vb, settings, ia, ib)
        if match is None or (strict and match.matched < _PLAIN_MIN_SAMPLES):
            return None  # on weak evidence, two samples of two flat clips prove nothing
        if self.thumbs is not None:
            confirmed, match = verify(match, a, b, self.thumbs, strict=strict)
            if confirmed is False or (confirmed is None and strict):
                return None
        return match


def find_reposts(
    videos: Sequence[VideoHashes],
    settings: MatchSettings | None = None,
    thumbs: ThumbSource | None = None,
) -> list[PairMatch]:
    """Pairs of ``videos`` that are reposts of each other (candidates, then ``PairMatcher``),
    enough to link every group: a candidate pair whose videos are already linked through
    others is not aligned, since it cannot change a group (in a family of 25 copies, 24
    verified pairs where there were 300, most of the search's CPU)."""
    settings = settings or MatchSettings()
    plain = settings.plain_detail if thumbs is not None else None  # align_plain needs them
    matcher = PairMatcher(videos, settings, thumbs)
    linked = Components(len(videos))
    matches = []
    for ia, ib in sorted(candidate_pairs(videos, settings.max_distance, plain)):
        if linked.find(ia) == linked.find(ib):
            continue
        match = matcher.match(ia, ib)
        if match is not None:
            matches.append(match)
            linked.union(ia, ib)
    return matches


def connected_groups(n: int, pairs: Sequence[tuple[int, int]]) -> list[list[int]]:
    """Groups (size >= 2) of indices linked by ``pairs``."""
    components = Components(n)
    for a, b in pairs:
        components.union(a, b)
    return components.groups()
