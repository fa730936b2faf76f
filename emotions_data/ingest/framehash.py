"""Per-second frame hashes that survive what platforms do to a reposted video.

``prepare``'s single decode also yields small grey "hash frames" (``HASH_FPS`` a second,
squashed to ``HASH_SIDE`` x ``HASH_SIDE``; ``ingest.mediapass``). From them, per video:

1. **Bars removed** (``ingest.bars``): black, coloured, or a blurred and enlarged copy of the
   picture. Hashes are taken inside the content box, so a letterboxed / pillarboxed repost
   hashes like its source.
2. **A DCT hash per sample, PDQ-style**: the region area-resized to 64 x 64, its 16 x 16
   lowest DCT frequencies without the DC term, each bit "above the median" (256 bits; the
   construction of Meta's PDQ, in numpy and batched over all frames of a video).
3. **Variants** per sample: the whole content box and centre crops of it (``CROP_SCALES``,
   so a repost cropped 10-15 % per side and rescaled matches the source's centre crop), plus
   the horizontally mirrored whole box (a mirrored repost).
4. **What the comparison of copies needs** (``ingest.copy_edits``): the content box's share
   of the frame, per sample whether it is a still (same hash as the one before, or too flat
   to hash: an intro card), and a 64 x 64 grey thumbnail of the content box per sample (the
   hash's own input, so free), from which aligned copies are compared pixel by pixel.
5. **A hash of the coarse picture** per sample (as shown and mirrored), for plain pictures:
   a smooth gradient's DCT bits follow its grain, so a copy of it under a logo shares no
   close DCT hash with its source. The coarse thumbnail (``aligned.coarse_unit``: 14 x 14,
   what is drawn over it and stays smoothed away) is projected on 256 fixed random
   directions, one bit per sign (SimHash): two pictures whose coarse versions correlate
   0.9 differ in about 37 bits, unrelated ones in about 128.

Samples too flat to hash reliably (a colour card, black frames: little detail and no coarse
shape) are marked invalid and never match anything, so two unrelated videos cannot be
grouped by a shared black intro.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from emotions_data.ingest.aligned import coarse_picture, coarse_unit, mirrored_unit
from emotions_data.ingest.bars import content_box
from emotions_data.ingest.resample import area_matrix, both_sides

HASH_FPS = 2.0  # hash frames per second of video
HASH_SIDE = 192  # hash frames are squashed to this square (grey)
#: The hashed regions: the whole content box, then centred crops of it (relative side).
CROP_SCALES = (1.0, 0.9, 0.8, 0.7)
#: Variant index of the smallest centre crop (the last scale).
CENTRE = len(CROP_SCALES) - 1
#: Variant index of the mirrored whole box (after the crop scales).
MIRROR = len(CROP_SCALES)
#: Variant index of the smallest centre crop, mirrored: a logo box and a username line over
#: a busy texture move most of the whole picture's bits, and a mirrored copy under them
#: matches its source only there (the centres, ``reposts.candidate_pairs``).
MIRROR_CENTRE = MIRROR + 1
N_VARIANTS = MIRROR_CENTRE + 1
WORDS = 4  # 256 bits as 4 x uint64

_HASH_IN = 64  # the DCT input side
#: Side of the per-sample thumbnails: the DCT's input, kept (4 KiB a sample as uint8)
THUMB_SIDE = _HASH_IN
_BITS_SIDE = 16  # 16 x 16 = 256 coefficients
#: A sample whose 64 x 64 region has a mean gradient below this (grey levels per pixel) is
#: too flat to hash: its bits would follow compression noise.
MIN_DETAIL = 2.0
#: ...unless its coarse picture (``aligned.coarse_picture``) spans at least this much (std,
#: grey levels): a smooth gradient has shapes of its own (20-45 on the benchmark's, some
#: with a mean gradient of 1.5), unlike a flat colour (about 1) or a card with a small
#: logo (the benchmark's intro: 10.6), whose samples stay unmatched.
MIN_SHAPE = 16.0
#: Two consecutive samples this close (bits of 256) show the same picture: a still.
_STILL_DISTANCE = 12


def _dct_rows() -> npt.NDArray[np.float32]:
    j = np.arange(_HASH_IN)
    i = np.arange(1, _BITS_SIDE + 1)[:, None]  # frequencies 1..16: the DC term carries no shape
    m = np.sqrt(2.0 / _HASH_IN) * np.cos(np.pi / (2 * _HASH_IN) * i * (2 * j + 1))
    return np.asarray(m, dtype=np.float32)


_DCT = _dct_rows()
#: The SimHash directions of the coarse picture (``coarse_unit`` of a THUMB_SIDE thumbnail:
#: a quarter of the side less a pixel of border each way).
_COARSE_PIXELS = (_HASH_IN // 4 - 2) ** 2
_DIRECTIONS = np.random.default_rng(29).standard_normal((_COARSE_PIXELS, 64 * WORDS))
#: BT.601 luma weights of R, G, B.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True)
class VideoHashes:
    """Everything the repost search needs of one video."""

    #: (N, N_VARIANTS, WORDS) uint64: per sample, the crop scales, the mirrored whole box,
    #: the mirrored smallest crop
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
    #: (N, THUMB_SIDE, THUMB_SIDE) uint8 grey content box per sample; None in hash files
    #: written before it existed, and when loaded without it (the search does not need it)
    thumbs: npt.NDArray[np.uint8] | None = None
    #: (N, 2, WORDS) uint64: per sample the coarse picture's SimHash, as shown and mirrored
    #: (``plain_hashes``); None in hash files written before it existed
    plain: npt.NDArray[np.uint64] | None = None

    @property
    def n(self) -> int:
        return int(self.hashes.shape[0])

    def summary(self) -> str:
        """Hex of the middle sample's whole-picture hash (the manifest's ``phash``)."""
        words = self.hashes[self.n // 2, 0].astype("<u8")
        return bytes(words.tobytes()).hex()

    def save(self, path: str | Path) -> None:
        """Write to ``path`` (an ``.npz``; the caller makes the write atomic)."""
        arrays: dict[str, Any] = {  # Any: numpy types **kwargs as its allow_pickle flag
            "hashes": self.hashes,
            "valid": self.valid,
            "still": self.still,
            "chroma": self.chroma,
            "detail": self.detail,
            "scalars": np.array([self.fps, self.content_share]),
        }
        if self.thumbs is not None:
            arrays["thumbs"] = self.thumbs
        if self.plain is not None:
            arrays["plain"] = self.plain
        with open(path, "wb") as fh:
            np.savez(fh, **arrays)

    @classmethod
    def load(cls, path: str | Path, *, thumbs: bool = False) -> VideoHashes:
        """``thumbs``: also read the thumbnails (npz members are read lazily, so the search
        over every video skips them; files of older versions have none)."""
        with np.load(path) as data:
            scalars = [float(x) for x in data["scalars"]]  # older files add a third, unused
            fps, content = scalars[0], scalars[1]
            small = data["thumbs"] if thumbs and "thumbs" in data.files else None
            plain = data["plain"] if "plain" in data.files else None
            return cls(
                hashes=_with_mirrored_centre(np.asarray(data["hashes"], dtype=np.uint64)),
                valid=np.asarray(data["valid"], dtype=bool),
                still=np.asarray(data["still"], dtype=bool),
                chroma=np.asarray(data["chroma"], dtype=np.float32),
                detail=np.asarray(data["detail"], dtype=np.float32),
                fps=fps,
                content_share=content,
                thumbs=None if small is None else np.asarray(small, dtype=np.uint8),
                plain=None if plain is None else np.asarray(plain, dtype=np.uint64),
            )


def _mirror_flips() -> npt.NDArray[np.uint64]:
    """(WORDS,) the bits whose DCT coefficient changes sign when the picture is mirrored: those
    of odd horizontal frequency (cos(pi i (2(n-1-j)+1) / 2n) = (-1)^i cos(pi i (2j+1) / 2n))."""
    odd = np.zeros((_BITS_SIDE, _BITS_SIDE), dtype=bool)
    odd[:, 0::2] = True  # frequencies 1, 3, 5, ... (``_dct_rows``)
    return np.asarray(_packed(odd.reshape(1, -1))[0], dtype=np.uint64)


def _with_mirrored_centre(hashes: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """``hashes`` of a file written before ``MIRROR_CENTRE`` existed, given one: the centre's
    bits with those of odd horizontal frequency flipped. The bits are signs against the
    median coefficient, which mirroring moves a little, so this is near, not equal (tried on
    the whole box against its mirrored hash: 8 bits of 256 at the median, 31 at the 99th
    percentile, on the cells textures)."""
    if hashes.shape[1] >= N_VARIANTS:
        return hashes
    centre = hashes[:, CENTRE] ^ _mirror_flips()[None, :]
    return np.ascontiguousarray(np.concatenate([hashes, centre[:, None, :]], axis=1))


def load_thumbs(path: str | Path) -> npt.NDArray[np.uint8] | None:
    """The thumbnails alone of a hash file (None for a file of an older version)."""
    with np.load(path) as data:
        return np.asarray(data["thumbs"], dtype=np.uint8) if "thumbs" in data.files else None


def _dct_hash(x: npt.NDArray[Any]) -> npt.NDArray[np.uint64]:
    """(N, 64, 64) float -> (N, WORDS) uint64 hashes."""
    coeffs = both_sides(x, _DCT, _DCT).reshape(len(x), -1)
    return _packed(coeffs > np.median(coeffs, axis=1, keepdims=True))


def _packed(bits: npt.NDArray[np.bool_]) -> npt.NDArray[np.uint64]:
    """(N, 256) bools -> (N, WORDS) uint64."""
    packed = np.packbits(bits, axis=1)  # (N, 32) uint8
    return np.ascontiguousarray(packed).view(np.dtype("<u8")).astype(np.uint64)


def plain_hashes(thumbs: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint64]:
    """(N, 2, WORDS) SimHashes of one video's (N, THUMB_SIDE, THUMB_SIDE) thumbnails' coarse
    pictures, as shown and mirrored."""
    unit = coarse_unit(thumbs.astype(np.float32))
    out = np.zeros((len(unit), 2, WORDS), dtype=np.uint64)
    for k, view in enumerate((unit, mirrored_unit(unit))):  # one smoothing for both
        out[:, k] = _packed(view @ _DIRECTIONS > 0.0)
    return out


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
    thumbs: npt.NDArray[np.uint8] = np.zeros((n, THUMB_SIDE, THUMB_SIDE), dtype=np.uint8)
    for v, scale in enumerate(CROP_SCALES):
        ch, cw = max(8, round(bh * scale)), max(8, round(bw * scale))
        y0, x0 = (bh - ch) // 2, (bw - cw) // 2
        region = box[:, y0 : y0 + ch, x0 : x0 + cw]
        small = both_sides(region, area_matrix(ch, _HASH_IN), area_matrix(cw, _HASH_IN))
        hashes[:, v] = _dct_hash(small)
        if v == 0:
            thumbs = np.clip(np.rint(small), 0, 255).astype(np.uint8)
            hashes[:, MIRROR] = _dct_hash(np.ascontiguousarray(small[:, :, ::-1]))
            detail = (
                np.abs(np.diff(small, axis=1)).mean(axis=(1, 2))
                + np.abs(np.diff(small, axis=2)).mean(axis=(1, 2))
            ) / 2.0
        if v == CENTRE:
            hashes[:, MIRROR_CENTRE] = _dct_hash(np.ascontiguousarray(small[:, :, ::-1]))
    shape = coarse_picture(thumbs.astype(np.float32)).std(axis=(1, 2))
    valid = (detail >= MIN_DETAIL) | (shape >= MIN_SHAPE)
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
        thumbs=thumbs,
        plain=plain_hashes(thumbs),
    )
