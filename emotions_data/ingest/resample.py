"""Box-filter resampling of stacks of small grey frames, as plain 2-D BLAS products.

Shared by the frame hash (``ingest.framehash``), the bar finder (``ingest.bars``) and the
comparison of aligned copies (``ingest.copy_edits``).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import numpy.typing as npt


@lru_cache(maxsize=512)
def area_matrix(n_in: int, n_out: int) -> npt.NDArray[np.float32]:
    """(n_out, n_in) weights that average each output cell's share of the input (box filter).

    Upsampling works too: each output cell then lies over one or two input pixels."""
    edges = np.linspace(0.0, n_in, n_out + 1)
    lo, hi = edges[:-1, None], edges[1:, None]
    px = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(hi, px + 1) - np.maximum(lo, px), 0.0, None)
    matrix = np.asarray(overlap / overlap.sum(axis=1, keepdims=True), dtype=np.float32)
    matrix.flags.writeable = False  # shared by every caller (cached)
    return matrix


def both_sides(
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


def resize(x: npt.NDArray[np.float32], rows: int, cols: int) -> npt.NDArray[np.float32]:
    """(N, h, w) -> (N, rows, cols) by box filter."""
    if len(x) == 0:
        return np.zeros((0, rows, cols), dtype=np.float32)
    return both_sides(
        x.astype(np.float32, copy=False),
        area_matrix(x.shape[1], rows),
        area_matrix(x.shape[2], cols),
    )
