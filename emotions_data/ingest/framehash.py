"""Per-second frame hashes that survive what platforms do to a reposted video.

``prepare``'s single decode also yields small grey "hash frames" (``HASH_FPS`` a second,
squashed to ``HASH_SIDE`` x ``HASH_SIDE``; ``ingest.mediapass``). From them, per video:

1. **Bars removed.** Black or blurred bars carry no sharp detail: the rows and columns whose
   mean gradient (over all hash frames) is far below the centre's are bars, and the content
   box is the band around the centre above that level. Hashes are taken inside the box, so a
   letterboxed / pillarboxed repost hashes like its source.
2. **A DCT hash per sample, PDQ-style**: the region area-resized to 64 x 64, its 16 x 16
   lowest DCT frequencies without the DC term, each bit "above the median" (256 bits; the
   construction of Meta's PDQ, in numpy and batched over all frames of a video).
3. **Variants** per sample: the whole content box and centre crops of it (``CROP_SCALES``,
   so a repost cropped 10-15 % per side and rescaled matches the source's centre crop), plus
   the horizontally mirrored whole box (a mirrored repost).
4. **Flags for the keep rule**: the share of the content box that never moves (a logo or
   username overlay), whether bars were found, and per sample whether it is a still (same hash
   as the one before, or too flat to hash: an intro card).

Samples too flat to hash reliably (a colour card, black frames) are marked invalid and never
match anything, so two unrelated videos cannot be grouped by a shared black intro.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

HASH_FPS = 2.0  # hash frames per second of video
HASH_SIDE = 192  # hash frames are squashed to this square (grey)
#: The hashed regions: the whole content box, then centred crops of it (relative side).
CROP_SCALES = (1.0, 0.9, 0.8, 0.7)
#: Variant index of the mirrored whole box (after the crop scales).
MIRROR = len(CROP_SCALES)
N_VARIANTS = len(CROP_SCALES) + 1
WORDS = 4  # 256 bits as 4 x uint64

_HASH_IN = 64  # the DCT input side
_BITS_SIDE = 16  # 16 x 16 = 256 coefficients
#: A sample whose 64 x 64 region has a mean gradient below this (grey levels per pixel) is
#: too flat to hash: its bits would follow compression noise.
MIN_DETAIL = 2.0
#: Rows / columns below this share of the centre's detail are bars.
_BAR_LEVEL = 0.3
#: Bars thinner than this share of the frame side are ignored (compression ringing).
_MIN_BAR = 0.03
#: A block of the content box is static when its change over time is below this share of the
#: median block's (a logo box or a username drawn over moving content).
_STATIC_LEVEL = 0.1
#: Two consecutive samples this close (bits of 256) show the same picture: a still.
_STILL_DISTANCE = 12


def _dct_rows() -> npt.NDArray[np.float32]:
    j = np.arange(_HASH_IN)
    i = np.arange(1, _BITS_SIDE + 1)[:, None]  # frequencies 1..16: the DC term carries no shape
    m = np.sqrt(2.0 / _HASH_IN) * np.cos(np.pi / (2 * _HASH_IN) * i * (2 * j + 1))
    return np.asarray(m, dtype=np.float32)


_DCT = _dct_rows()
#: BT.601 luma weights of R, G, B.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@lru_cache(maxsize=256)
def _area_matrix(n_in: int, n_out: int) -> npt.NDArray[np.float32]:
    """(n_out, n_in) weights that average each output cell's share of the input (box filter)."""
    edges = np.linspace(0.0, n_in, n_out + 1)
    lo, hi = edges[:-1, None], edges[1:, None]
    px = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(hi, px + 1) - np.maximum(lo, px), 0.0, None)
    matrix = np.asarray(overlap / overlap.sum(axis=1, keepdims=True), dtype=np.float32)
    matrix.flags.writeable = False  # shared by every caller (cached)
    return matrix


@dataclass(frozen=True)
class VideoHashes:
    """Everything the repost search needs of one video."""

    #: (N, N_VARIANTS, WORDS) uint64: per sample, the crop scales then the mirror
    hashes: npt.NDArray[np.uint64]
    #: (N,) bool: the sample has enough detail to be matched
    valid: npt.NDArray[np.bool_]
    #: (N,) bool: the sample repeats the one before (or is flat): a still, e.g. an intro card
    still: npt.NDArray[np.bool_]
    #: (N, 2) float32: mean colour difference (R - Y, B - Y) inside the content box; the DCT
    #: hash sees only luma, so a red clip and a blue one with the same shapes differ here
    chroma: npt.NDArray[np.float32]
    #: (N,) float32: mean gradient of the hashed 64 x 64 picture (how much detail it has)
    detail: npt.NDArray[np.float32]
    fps: float
    #: share of the frame inside the content box (below 1 when bars were found)
    content_share: float
    #: share of the content box that never changes (an overlay drawn over moving content)
    static_share: float

    @property
    def n(self) -> int:
        return int(self.hashes.shape[0])

    def summary(self) -> str:
        """Hex of the middle sample's whole-picture hash (the manifest's ``phash``)."""
        words = self.hashes[self.n // 2, 0].astype("<u8")
        return bytes(words.tobytes()).hex()

    def save(self, path: str | Path) -> None:
        """Write to ``path`` (an ``.npz``; the caller makes the write atomic)."""
        with open(path, "wb") as fh:
            np.savez(
                fh,
                hashes=self.hashes,
                valid=self.valid,
                still=self.still,
                chroma=self.chroma,
                detail=self.detail,
                scalars=np.array([self.fps, self.content_share, self.static_share]),
            )

    @classmethod
    def load(cls, path: str | Path) -> VideoHashes:
        with np.load(path) as data:
            fps, content, static = (float(x) for x in data["scalars"])
            return cls(
                hashes=np.asarray(data["hashes"], dtype=np.uint64),
                valid=np.asarray(data["valid"], dtype=bool),
                still=np.asarray(data["still"], dtype=bool),
                chroma=np.asarray(data["chroma"], dtype=np.float32),
                detail=np.asarray(data["detail"], dtype=np.float32),
                fps=fps,
                content_share=content,
                static_share=static,
            )


def _band(profile: npt.NDArray[np.float32]) -> tuple[int, int]:
    """[lo, hi) of the content along one axis: the run around the centre above the bar level."""
    n = len(profile)
    smooth = np.convolve(profile, np.ones(3) / 3.0, mode="same")
    centre = smooth[n * 2 // 5 : n * 3 // 5]
    level = _BAR_LEVEL * float(np.median(centre))
    if level <= 0:
        return 0, n
    mid = n // 2
    lo = mid
    while lo > 0 and smooth[lo - 1] >= level:
        lo -= 1
    hi = mid
    while hi < n and smooth[hi] >= level:
        hi += 1
    min_bar = max(1, round(_MIN_BAR * n))
    # added bars are centred: a flat band on one side only (a sky, a wall) is picture
    if min(lo, n - hi) < min_bar or abs(lo - (n - hi)) > max(2, round(_MIN_BAR * n)):
        return 0, n
    if hi - lo < n // 5:  # no plausible content band: keep the whole frame
        return 0, n
    return lo, hi


def content_box(frames: npt.NDArray[np.float32]) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the picture inside black or blurred bars."""
    gy = np.abs(np.diff(frames, axis=1)).mean(axis=0)  # (H-1, W)
    gx = np.abs(np.diff(frames, axis=2)).mean(axis=0)  # (H, W-1)
    # a row's detail: its horizontal gradient (the bar's own edge is a vertical gradient)
    top, bottom = _band(gx.mean(axis=1))
    left, right = _band(gy.mean(axis=0))
    return top, bottom, left, right


def _static_share(region: npt.NDArray[np.float32]) -> float:
    """Share of 8 x 8 blocks of the region that do not change while the rest does."""
    n, h, w = region.shape
    if n < 4 or h < 16 or w < 16:
        return 0.0
    bh, bw = h // 8, w // 8
    blocks = region[:, : bh * 8, : bw * 8].reshape(n, 8, bh, 8, bw).mean(axis=(2, 4))
    change = np.abs(np.diff(blocks, axis=0)).mean(axis=0)  # (8, 8)
    typical = float(np.median(change))
    if typical < 1.0:  # the picture hardly moves: an overlay cannot be told apart
        return 0.0
    return float((change < _STATIC_LEVEL * typical).mean())


def _both_sides(
    x: npt.NDArray[np.float32], rows: npt.NDArray[np.float32], cols: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    """``rows @ x[i] @ cols.T`` for every i of (N, h, w) ``x``, as two plain 2-D products.

    numpy's stacked matmul of a sliced array runs its own loops, not BLAS: 10x slower here.
    """
    n, h, w = x.shape
    a = np.ascontiguousarray(x).reshape(n * h, w) @ cols.T  # (N*h, c)
    c = cols.shape[0]
    a = np.ascontiguousarray(a.reshape(n, h, c).transpose(1, 0, 2)).reshape(h, n * c)
    b = rows @ a  # (r, N*c)
    return np.ascontiguousarray(b.reshape(rows.shape[0], n, c).transpose(1, 0, 2))


def _dct_hash(x: npt.NDArray[Any]) -> npt.NDArray[np.uint64]:
    """(N, 64, 64) float -> (N, WORDS) uint64 hashes."""
    coeffs = _both_sides(x, _DCT, _DCT).reshape(len(x), -1)
    bits = coeffs > np.median(coeffs, axis=1, keepdims=True)
    packed = np.packbits(bits, axis=1)  # (N, 32) uint8
    return np.ascontiguousarray(packed).view(np.dtype("<u8")).astype(np.uint64)


def hash_video(frames: npt.NDArray[np.uint8], fps: float = HASH_FPS) -> VideoHashes:
    """The hashes of a (N, H, W, 3) uint8 RGB frame sequence sampled at ``fps``."""
    if frames.ndim != 4 or frames.shape[0] == 0 or frames.shape[3] != 3:
        raise ValueError("hash_video needs at least one (H, W, 3) RGB frame")
    rgb = frames.astype(np.float32)
    n, height, width = rgb.shape[:3]
    x = (rgb.reshape(-1, 3) @ _LUMA).reshape(n, height, width)  # one BLAS call, not 5 passes
    top, bottom, left, right = content_box(x)
    box = x[:, top:bottom, left:right]
    # (N, 3) mean colour; summed one axis at a time: a mean over axes (1, 2) of this strided
    # view takes 15x longer (a third of the whole hash)
    inside = rgb[:, top:bottom, left:right]
    colour = inside.sum(axis=1).sum(axis=1) / float(inside.shape[1] * inside.shape[2])
    luma = colour @ _LUMA
    chroma = np.stack([colour[:, 0] - luma, colour[:, 2] - luma], axis=1).astype(np.float32)
    bh, bw = box.shape[1:]
    hashes = np.zeros((n, N_VARIANTS, WORDS), dtype=np.uint64)
    detail = np.zeros(n, dtype=np.float32)
    for v, scale in enumerate(CROP_SCALES):
        ch, cw = max(8, round(bh * scale)), max(8, round(bw * scale))
        y0, x0 = (bh - ch) // 2, (bw - cw) // 2
        region = box[:, y0 : y0 + ch, x0 : x0 + cw]
        small = _both_sides(region, _area_matrix(ch, _HASH_IN), _area_matrix(cw, _HASH_IN))
        hashes[:, v] = _dct_hash(small)
        if v == 0:
            hashes[:, MIRROR] = _dct_hash(np.ascontiguousarray(small[:, :, ::-1]))
            detail = (
                np.abs(np.diff(small, axis=1)).mean(axis=(1, 2))
                + np.abs(np.diff(small, axis=2)).mean(axis=(1, 2))
            ) / 2.0
    valid = detail >= MIN_DETAIL
    still = ~valid.copy()
    if n > 1:
        step = np.bitwise_count(hashes[1:, 0] ^ hashes[:-1, 0]).sum(axis=1)
        still[1:] |= step <= _STILL_DISTANCE
    return VideoHashes(
        hashes=hashes,
        valid=valid,
        still=still,
        chroma=chroma,
        detail=detail.astype(np.float32),
        fps=float(fps),
        content_share=float(bh * bw) / float(height * width),
        static_share=_static_share(box),
    )
