"""A small cache builder for raw files (PyAV decode + torchaudio features), per the cache contract.

``prepare`` owns the dataset's cache; this builder exists for ``baseline predict`` on loose
video files when ``emotions_data.ingest.prepare.build_cache_for_file`` is not available, and
writes exactly the same layout (``emotions_data.schema.cache``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from emotions_data.schema.cache import CacheMeta, write_cache
from emotions_data.schema.errors import ServiceError

SAMPLE_RATE, HOP, N_MELS, N_MFCC = 16_000, 160, 64, 32


def _decode_video(path: Path, short_side: int) -> tuple[npt.NDArray[np.uint8], float, float]:
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            fps = float(stream.average_rate or 25)
            w, h = stream.codec_context.width, stream.codec_context.height
            scale = short_side / min(w, h)
            width, height = max(2, round(w * scale)), max(2, round(h * scale))
            frames = [
                f.to_ndarray(width=width, height=height, format="rgb24")
                for f in container.decode(stream)
            ]
            duration = float(container.duration or 0) / 1e6
    except (av.error.FFmpegError, IndexError) as exc:  # type: ignore[attr-defined]
        raise ServiceError(f"{path}: cannot decode video ({exc})") from None
    if not frames:
        raise ServiceError(f"{path}: no video frames")
    return np.stack(frames), fps, duration or len(frames) / fps


def _decode_audio(path: Path) -> npt.NDArray[np.float32] | None:
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                return None
            resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
            chunks = []
            for frame in container.decode(container.streams.audio[0]):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
    except av.error.FFmpegError as exc:  # type: ignore[attr-defined]
        raise ServiceError(f"{path}: cannot decode audio ({exc})") from None
    return np.concatenate(chunks).astype(np.float32) if chunks else None


def audio_features(
    wave: npt.NDArray[np.float32] | None, n_steps: int
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Log-mel (64, T) and MFCC (32, T) at 16 kHz with a 10 ms hop; zeros without audio."""
    import torch
    import torchaudio

    if wave is None or wave.size < 400:
        return np.zeros((N_MELS, n_steps), np.float32), np.zeros((N_MFCC, n_steps), np.float32)
    melkw = {"n_fft": 400, "hop_length": HOP, "n_mels": N_MELS}
    x = torch.from_numpy(wave)
    mel = torchaudio.transforms.MelSpectrogram(SAMPLE_RATE, **melkw)(x)  # type: ignore[arg-type]
    logmel = torch.log(mel + 1e-6)
    mfcc = torchaudio.transforms.MFCC(SAMPLE_RATE, n_mfcc=N_MFCC, melkwargs=melkw)(x)
    return logmel.numpy().astype(np.float32), mfcc.numpy().astype(np.float32)


def tsn_segments(
    frames: npt.NDArray[np.uint8], segments: int, per_segment: int
) -> npt.NDArray[np.uint8]:
    """S uniform segments of Fc consecutive frames each, loop-padding a short video."""
    n = len(frames)
    starts = np.floor(np.arange(segments) * n / segments).astype(np.int64)
    index = (starts[:, None] + np.arange(per_segment)[None, :]) % n
    out: npt.NDArray[np.uint8] = frames[index]
    return out


def build_cache_minimal(
    media: str | Path,
    cache_dir: str | Path,
    video_id: str,
    *,
    segments: int = 16,
    frames_per_segment: int = 8,
    short_side: int = 128,
) -> Path:
    """Decode ``media`` and write its cache folder (frames, log-mel, MFCC, meta)."""
    media = Path(media)
    video, fps, duration = _decode_video(media, short_side)
    clip = np.ascontiguousarray(tsn_segments(video, segments, frames_per_segment))
    wave = _decode_audio(media)
    n_steps = max(1, int(duration * SAMPLE_RATE / HOP) + 1)
    logmel, mfcc = audio_features(wave, n_steps)
    meta = CacheMeta(
        video_id=video_id,
        n_segments=segments,
        frames_per_segment=frames_per_segment,
        height=int(clip.shape[2]),
        width=int(clip.shape[3]),
        duration_s=duration,
        source_fps=fps,
        has_audio=wave is not None,
    )
    return write_cache(cache_dir, meta, clip, logmel, mfcc)
