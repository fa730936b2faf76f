"""What a copy adds or lacks, judged against the others (``ingest.copy_edits``), and the
coarse comparison of plain pictures (``ingest.aligned.coarse``)."""

from __future__ import annotations

import numpy as np

from emotions_data.ingest.aligned import AlignedPair, CoarseViews, coarse, coarse_views, likeness
from emotions_data.ingest.copy_edits import _by_many, _not_footage
from emotions_data.ingest.framehash import (
    CROP_SCALES,
    MIN_DETAIL,
    N_VARIANTS,
    THUMB_SIDE,
    WORDS,
    VideoHashes,
    hash_video,
    plain_hashes,
)
from emotions_data.ingest.reposts import MatchSettings, align_plain


def _video(thumbs: np.ndarray) -> VideoHashes:
    n = len(thumbs)
    return VideoHashes(
        hashes=np.zeros((n, N_VARIANTS, WORDS), np.uint64),
        valid=np.ones(n, bool),
        still=np.zeros(n, bool),
        chroma=np.zeros((n, 2), np.float32),
        detail=np.full(n, 20.0, np.float32),
        fps=2.0,
        content_share=1.0,
        thumbs=np.clip(thumbs, 0, 255).astype(np.uint8),
    )


def _views(video: VideoHashes) -> CoarseViews:
    assert video.thumbs is not None
    return coarse_views(video.thumbs, CROP_SCALES)


def _drifting(n: int, seed: int) -> np.ndarray:
    """Footage-like thumbnails: one coarse picture panning a pixel a sample."""
    rng = np.random.default_rng(seed)
    wide = rng.uniform(0, 255, size=(THUMB_SIDE // 8, (THUMB_SIDE + n) // 8 + 1))
    wide = np.repeat(np.repeat(wide, 8, axis=0), 8, axis=1)
    return np.stack([wide[:, t : t + THUMB_SIDE] for t in range(n)])


def test_a_cut_is_a_step_well_below_the_videos_usual_one() -> None:
    # footage, then an unrelated clip from sample 6: the step into it is a cut
    spliced = np.concatenate([_drifting(6, seed=1), _drifting(4, seed=2)])
    assert _not_footage(_video(spliced), 6, 10, 6)
    # the same footage without the splice: no cut there
    assert not _not_footage(_video(_drifting(10, seed=1)), 6, 10, 6)
    # a texture that changes wholly between samples (a scrolling automaton) steps like a
    # cut everywhere: its trimmed end is footage another copy lacks, not an added clip
    rng = np.random.default_rng(3)
    churning = rng.uniform(0, 255, size=(10, THUMB_SIDE, THUMB_SIDE))
    assert not _not_footage(_video(churning), 6, 10, 6)


def test_an_edit_counts_when_a_third_of_the_comparisons_show_it() -> None:
    # the original's end is extra only against the one copy that was trimmed: no outro
    assert _by_many([1.5, 0.0, 0.0, 0.0, 0.0, 0.0], largest=True) == 0.0
    # an outro that two copies share shows against the other four
    assert _by_many([0.0, 0.0, 1.5, 1.5, 1.5, 1.5], largest=True) == 1.5
    # with two or three copies, one comparison is enough (the extreme itself)
    assert _by_many([0.8, 1.0], largest=False) == 0.8
    assert _by_many([1.0, 1.0, 0.8], largest=False) == 0.8


def _gradient(n: int, angle: float, seed: int, grain: float, speed: float = 1.0) -> np.ndarray:
    """(n, S, S) a dim, slowly turning gradient under fresh grain each sample (played
    ``speed`` times as fast)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:THUMB_SIDE, 0:THUMB_SIDE] / THUMB_SIDE
    frames = []
    for t in range(n):
        a = angle + 0.15 * t * speed
        frames.append(60 + 30 * (np.cos(a) * x + np.sin(a) * y) + rng.normal(0, grain, x.shape))
    return np.asarray(frames, np.float32)


def _pair(a: np.ndarray, b: np.ndarray) -> AlignedPair:
    k = np.arange(len(a), dtype=np.int64)
    return AlignedPair(a=a, b=b, ia=k, ib=k, side_ratio=1.0)


def test_plain_copies_compared_coarse() -> None:
    source = _gradient(10, 0.3, seed=1, grain=6.0)
    # a re-encode: the same gradient, the grain smoothed away
    copy = _gradient(10, 0.3, seed=2, grain=0.5)
    fine, rough = likeness(_pair(source, copy)), likeness(coarse(_pair(source, copy)))
    assert fine.appearance < 0.9 < rough.appearance  # grain capped the fine correlation
    assert rough.close
    # a gradient turned another way is not the same picture, at any resolution
    other = _gradient(10, 2.0, seed=3, grain=6.0)
    assert not likeness(coarse(_pair(source, other))).close


def test_plain_copies_aligned_on_their_coarse_pictures() -> None:
    # a sped-up copy of a grainy gradient: its samples fall between the source's moments,
    # where grain decides the hash's bits; the coarse pictures still align
    source = _video(_gradient(12, 0.3, seed=1, grain=6.0))
    faster = _video(_gradient(11, 0.3, seed=2, grain=2.0, speed=1.1))
    match = align_plain(source, faster, _views(source), _views(faster), MatchSettings())
    assert match is not None and match.share >= 0.9 and not match.mirrored
    # a gradient turning another way from elsewhere does not align
    other = _video(_gradient(12, 2.0, seed=3, grain=6.0))
    assert align_plain(source, other, _views(source), _views(other), MatchSettings()) is None


def _boxed(frames: np.ndarray, ys: list[int], x: int = 20) -> np.ndarray:
    """``frames`` with a white 16 x 6 box drawn at row ``ys[t]`` of sample t."""
    out = frames.copy()
    for t, y in enumerate(ys):
        out[t, y : y + 6, x : x + 16] = 250.0
    return out


def test_a_box_drawn_over_a_plain_picture_is_smoothed_away() -> None:
    source = _gradient(10, 0.3, seed=1, grain=2.0)
    # a logo box that stays put: most of the gradient's contrast, so the copies' coarse
    # pictures correlate below 0.9 until it is smoothed away
    logo = _boxed(source, [24] * 10)
    plain_pair = coarse(_pair(source, logo), plain=True)
    assert likeness(coarse(_pair(source, logo))).appearance < 0.9
    assert likeness(plain_pair).appearance > 0.95 and likeness(plain_pair).close
    # a box that moves (a caption changing place) is part of the video: it stays
    moving = _boxed(source, [8 + 5 * t for t in range(10)], x=24)
    assert likeness(coarse(_pair(source, moving), plain=True)).appearance < 0.9
    # their coarse hashes agree too: the repost search finds the pair
    hashes = [plain_hashes(np.clip(x, 0, 255).astype(np.uint8))[:, 0] for x in (source, logo)]
    bits = np.bitwise_count(hashes[0] ^ hashes[1]).sum(axis=1)
    assert bits.max() <= 48


def test_a_smooth_gradient_is_hashed_and_a_card_is_not() -> None:
    # a wide, very smooth gradient: a mean gradient under MIN_DETAIL, but shapes of its own
    y, x = np.mgrid[0:96, 0:96] / 96.0
    smooth = np.repeat((40 + 120 * (x + y) / 2)[:, :, None], 3, axis=2)
    # a dark card with a small red logo: unmatched, as a flat colour is
    card = np.full((96, 96, 3), 32.0)
    card[40:56, 32:64] = (255.0, 0.0, 0.0)
    hashed = hash_video(np.stack([smooth, card]).astype(np.uint8))
    assert hashed.detail[0] < MIN_DETAIL and hashed.detail[1] < MIN_DETAIL
    assert hashed.valid.tolist() == [True, False]
