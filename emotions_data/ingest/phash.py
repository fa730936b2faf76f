"""Perceptual video hash and near-duplicate grouping (reposts re-encoded or resized).

The hash samples ``K`` frames at fixed relative times (1/(K+1), ..., K/(K+1) of the clip),
each squashed to 32x32 whatever its aspect ratio (so a repost resized to another shape still
matches). Per frame it keeps a 64-bit DCT hash of the luma (the 8x8 lowest frequencies
against their median, the classic pHash) and the mean colour (3 bytes), because a luma hash
alone cannot tell a white box on red from the same box on blue. Stored as hex: per frame
8 hash bytes + 3 colour bytes.

Two videos are near-duplicates when the mean Hamming distance of their frame hashes is at most
``max_hamming`` (of 64) and no frame's mean colour differs by more than ``max_colour_diff``
(of 255) in any channel. Groups are the connected components of that relation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

HASH_SIZE = 32  # side of the squashed frame the DCT runs on
LOW = 8  # the LOW x LOW lowest frequencies give the 64 bits
_BYTES_PER_FRAME = LOW * LOW // 8 + 3
#: Coefficients must beat the median by this much, so flat frames hash stably (not on noise).
_EPS = 2.0


def _dct_matrix(n: int) -> npt.NDArray[np.float64]:
    k = np.arange(n)[:, None]
    m = np.cos(np.pi / n * (np.arange(n) + 0.5) * k) * np.sqrt(2.0 / n)
    m[0] /= np.sqrt(2.0)
    return np.asarray(m, dtype=np.float64)


_DCT = _dct_matrix(HASH_SIZE)


def frame_hash(rgb: npt.NDArray[np.uint8]) -> bytes:
    """11 bytes for one (32, 32, 3) uint8 frame: 64 DCT-hash bits then the mean R, G, B."""
    pixels = rgb.astype(np.float64)
    luma = pixels @ np.array([0.299, 0.587, 0.114])
    coeffs = (_DCT @ luma @ _DCT.T)[:LOW, :LOW].ravel()
    bits = coeffs > np.median(coeffs) + _EPS
    colour = np.clip(np.rint(pixels.reshape(-1, 3).mean(axis=0)), 0, 255).astype(np.uint8)
    return bytes(np.packbits(bits).tobytes()) + bytes(colour.tobytes())


def sample_positions(n_frames: int, k: int) -> list[int]:
    """Indices of the ``k`` frames at relative times i/(k+1)."""
    return [min(n_frames - 1, int(n_frames * (i + 1) / (k + 1))) for i in range(k)]


def video_phash(frames: npt.NDArray[np.uint8], k: int = 4) -> str:
    """Hex hash of a (N, 32, 32, 3) uint8 frame sequence (needs N >= 1)."""
    if frames.ndim != 4 or frames.shape[0] == 0:
        raise ValueError("video_phash needs at least one (32, 32, 3) frame")
    return b"".join(frame_hash(frames[i]) for i in sample_positions(len(frames), k)).hex()


_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def _decode(phashes: Sequence[str]) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int16]]:
    """(packed hash bytes (n, K, 8), mean colours (n, K, 3)) of same-length hashes."""
    raw = np.array([np.frombuffer(bytes.fromhex(h), np.uint8) for h in phashes])
    if raw.ndim != 2 or raw.shape[1] % _BYTES_PER_FRAME:
        raise ValueError("phashes must all be the same length and made by video_phash")
    per_frame = raw.reshape(len(phashes), -1, _BYTES_PER_FRAME)
    return per_frame[:, :, : LOW * LOW // 8], per_frame[:, :, LOW * LOW // 8 :].astype(np.int16)


def distance(a: str, b: str) -> tuple[float, int]:
    """(mean Hamming distance per frame, largest mean-colour difference) between two hashes."""
    packed, colours = _decode([a, b])
    hamming = float(_POPCOUNT[packed[0] ^ packed[1]].sum(axis=1).mean())
    return hamming, int(np.abs(colours[0] - colours[1]).max())


def near_duplicate_pairs(
    phashes: Sequence[str], *, max_hamming: float = 8.0, max_colour_diff: int = 32
) -> list[tuple[int, int]]:
    """Index pairs (i < j) of near-duplicates; hashes of another length are never matched."""
    by_len: dict[int, list[int]] = {}
    for i, h in enumerate(phashes):
        by_len.setdefault(len(h), []).append(i)
    pairs: list[tuple[int, int]] = []
    for idx in by_len.values():
        n = len(idx)
        if n < 2:
            continue
        packed, colours = _decode([phashes[i] for i in idx])
        # all pairs, vectorised in row blocks of bounded memory (~50 MB): fine for 10^5 videos
        chunk = max(1, min(n, 50_000_000 // (n * packed.shape[1] * packed.shape[2])))
        for start in range(0, n, chunk):
            block = packed[start : start + chunk, None] ^ packed[None]
            ham = _POPCOUNT[block].sum(axis=3, dtype=np.int32).mean(axis=2)
            col = np.abs(colours[start : start + chunk, None] - colours[None]).max(axis=(2, 3))
            hit = (ham <= max_hamming) & (col <= max_colour_diff)
            for a, b in zip(*np.nonzero(hit), strict=True):
                i, j = start + int(a), int(b)
                if i < j:
                    pairs.append((idx[i], idx[j]))
    return pairs


def connected_groups(n: int, pairs: Sequence[tuple[int, int]]) -> list[list[int]]:
    """Groups (size >= 2) of indices linked by ``pairs`` (union-find)."""
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    return [g for g in groups.values() if len(g) > 1]
