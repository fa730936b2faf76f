"""Audio features of the training cache: log-mel and MFCC, numerically torchaudio's transforms.

``torchaudio.transforms.MelSpectrogram`` (hann window, ``center=True`` reflect padding, power
2, HTK mel scale, no filter norm) and ``MFCC`` (``AmplitudeToDB('power', top_db=80)`` then an
orthonormal DCT-II) re-written in numpy: importing torch costs about 4 s and 680 MiB per
worker process, which would be most of prepare's overhead on top of the transcode. A test
checks these arrays against torchaudio's to 1e-4.
"""

from __future__ import annotations

import wave
from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

#: Added before the log of the log-mel spectrogram.
LOG_EPS = 1e-6


def _hz_to_mel(f: float) -> float:
    return float(2595.0 * np.log10(1.0 + f / 700.0))


def _mel_to_hz(m: F64) -> F64:
    return np.asarray(700.0 * (10.0 ** (m / 2595.0) - 1.0), dtype=np.float64)


@lru_cache(maxsize=8)
def mel_filterbank(n_fft: int, n_mels: int, sample_rate: int) -> F64:
    """(n_freqs, n_mels) triangular HTK filters, as ``torchaudio.functional.melscale_fbanks``."""
    n_freqs = n_fft // 2 + 1
    all_freqs = np.linspace(0, sample_rate // 2, n_freqs)
    m_pts = np.linspace(_hz_to_mel(0.0), _hz_to_mel(sample_rate / 2), n_mels + 2, dtype=np.float64)
    f_pts = _mel_to_hz(m_pts)
    f_diff = f_pts[1:] - f_pts[:-1]
    slopes = f_pts[None, :] - all_freqs[:, None]
    down = -slopes[:, :-2] / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    return np.asarray(np.maximum(0.0, np.minimum(down, up)), dtype=np.float64)


def power_spectrogram(audio: F32, n_fft: int, hop: int) -> F64:
    """(n_freqs, T) |STFT|^2 with a periodic hann window and reflect padding (center=True)."""
    pad = n_fft // 2
    x = audio.astype(np.float64)
    if len(x) <= pad:  # reflect padding needs more samples than the pad
        x = np.pad(x, (0, pad + 1 - len(x)))
    x = np.pad(x, (pad, pad), mode="reflect")
    n_frames = 1 + (len(x) - n_fft) // hop
    frames = np.lib.stride_tricks.as_strided(
        x, shape=(n_frames, n_fft), strides=(x.strides[0] * hop, x.strides[0])
    )
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    spec = np.fft.rfft(frames * window, axis=1)
    return (spec.real**2 + spec.imag**2).T


@lru_cache(maxsize=8)
def dct_matrix(n_mfcc: int, n_mels: int) -> F64:
    """(n_mels, n_mfcc) orthonormal DCT-II, as ``torchaudio.functional.create_dct``."""
    n = np.arange(n_mels)
    k = np.arange(n_mfcc)[:, None]
    dct = np.cos(np.pi / n_mels * (n + 0.5) * k)
    dct[0] *= 1.0 / np.sqrt(2.0)
    dct *= np.sqrt(2.0 / n_mels)
    return dct.T


def audio_features(
    audio: F32,
    *,
    sample_rate: int = 16_000,
    n_fft: int = 400,
    hop_length: int = 160,
    n_mels: int = 64,
    n_mfcc: int = 32,
) -> tuple[F32, F32]:
    """(log-mel (n_mels, T), MFCC (n_mfcc, T)) of a mono float waveform in [-1, 1]."""
    power = power_spectrogram(audio, n_fft, hop_length)
    mel = mel_filterbank(n_fft, n_mels, sample_rate).T @ power
    logmel = np.log(mel + LOG_EPS)
    db = 10.0 * np.log10(np.maximum(mel, 1e-10))
    db = np.maximum(db, db.max() - 80.0)
    mfcc = (db.T @ dct_matrix(n_mfcc, n_mels)).T
    return logmel.astype(np.float32), mfcc.astype(np.float32)


def silent_features(
    duration_s: float,
    *,
    sample_rate: int = 16_000,
    hop_length: int = 160,
    n_mels: int = 64,
    n_mfcc: int = 32,
) -> tuple[F32, F32]:
    """All-zero features with as many frames as audio of ``duration_s`` would have."""
    frames = 1 + round(duration_s * sample_rate) // hop_length
    return np.zeros((n_mels, frames), np.float32), np.zeros((n_mfcc, frames), np.float32)


def read_wav_mono(path: str | Path) -> tuple[F32, int]:
    """A 16-bit PCM WAV as float32 in [-1, 1] (channels averaged) and its sample rate."""
    with wave.open(str(path), "rb") as wav:
        rate, channels, width = wav.getframerate(), wav.getnchannels(), wav.getsampwidth()
        data = wav.readframes(wav.getnframes())
    if width != 2:
        raise ValueError(f"expected 16-bit PCM, got {8 * width}-bit")
    samples = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    return samples, rate
