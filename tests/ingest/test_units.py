"""Pure pieces of ingest: audio features, TSN indices, profiles, error kinds."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from emotions_data.ingest.download import classify, guess_ids, short_message
from emotions_data.ingest.executors import run_tasks
from emotions_data.ingest.features import audio_features, silent_features
from emotions_data.ingest.mediapass import normalised_size, output_fps, tsn_indices
from emotions_data.ingest.prepare import PrepareConfig, load_prepare_config
from emotions_data.ingest.profiles import load_profile, redact
from emotions_data.schema.errors import ConfigError


def test_audio_features_match_torchaudio() -> None:
    torch = pytest.importorskip("torch")
    transforms = pytest.importorskip("torchaudio.transforms")
    rng = np.random.default_rng(0)
    t = np.arange(16_000 * 2) / 16_000
    wave = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(len(t))).astype(
        np.float32
    )
    logmel, mfcc = audio_features(wave)
    kwargs = {"n_fft": 400, "hop_length": 160, "n_mels": 64}
    mel_ref = transforms.MelSpectrogram(sample_rate=16_000, **kwargs)(
        torch.from_numpy(wave)
    ).numpy()
    mfcc_ref = transforms.MFCC(sample_rate=16_000, n_mfcc=32, melkwargs=kwargs)(
        torch.from_numpy(wave)
    ).numpy()
    assert logmel.shape == mel_ref.shape == (64, 201) and mfcc.shape == mfcc_ref.shape == (32, 201)
    assert np.abs(logmel - np.log(mel_ref + 1e-6)).max() < 1e-3
    assert np.abs(mfcc - mfcc_ref).max() < 1e-3
    zeros = silent_features(2.0)
    assert zeros[0].shape == (64, 201) and not zeros[0].any()


def test_tsn_and_sizes() -> None:
    idx = tsn_indices(160, 16, 8)
    assert idx.shape == (16, 8) and idx[0, 0] == 1 and idx[-1, -1] == 158
    assert (np.diff(idx, axis=1) == 1).all() and (np.diff(idx[:, 0]) > 0).all()
    short = tsn_indices(5, 4, 8)  # fewer frames than one segment needs: indices repeat
    assert short.min() == 0 and short.max() == 4
    assert normalised_size(720, 1280, 360) == (360, 640)
    assert normalised_size(1280, 720, 360) == (640, 360)
    assert normalised_size(160, 288, 360) == (160, 288)  # never upscaled
    assert output_fps(30, 15) == 15 and output_fps(10, 15) == 10 and output_fps(0, 15) == 15


def test_classify_error_messages() -> None:
    cases = {
        "[generic] x: Unable to download webpage: HTTP Error 404: Not Found": "unavailable",
        "[TikTok] 1: This video is private": "private",
        "The uploader has not made this video available in your country (geo restricted)": "geo_blocked",
        "[Douyin] 7: Fresh cookies (not necessarily logged in) are needed": "login_required",
        "HTTP Error 429: Too Many Requests": "rate_limited",
        "Unable to download webpage: ('Connection aborted.', RemoteDisconnected(...))": "network",
        "Read timed out.": "network",
        "Unsupported URL: https://example.org/page": "unsupported_url",
        "something odd happened": "other",
    }
    assert {m: classify(m) for m in cases} == cases
    platform, vid = guess_ids("https://www.tiktok.com/@someone/video/7234567890123456789", None)
    assert (platform, vid) == ("tiktok", "tiktok-7234567890123456789")
    assert guess_ids("http://127.0.0.1:1/a.mp4", "Douyin")[0] == "douyin"


def test_profiles_and_redaction(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_PROXY", "http://u:pw@10.0.0.1:3128")
    prof = load_profile(
        {
            "default": {"retries": 1, "concurrency": 3},
            "platforms": {"TikTok": {"proxy_env": "TEST_PROXY", "concurrency": 1}},
        }
    )
    tiktok = prof.for_platform("tiktok")
    assert tiktok.retries == 1 and tiktok.resolved_proxy() == "http://u:pw@10.0.0.1:3128"
    assert prof.for_platform("douyin").concurrency == 3 and prof.concurrency_caps() == {"tiktok": 1}
    msg = "Unable to connect to proxy http://u:pw@10.0.0.1:3128 (cookies /home/a/c.txt)"
    clean = redact(msg, [*tiktok.secrets(), "/home/a/c.txt"])
    assert "pw" not in clean and "/home/a/c.txt" not in clean and "<redacted>" in clean
    assert redact("https://user:pass@host/x", []) == "https://<redacted>@host/x"
    with pytest.raises(
        ConfigError,
        match=r"^profile: default\.cookie: expected one of the keys cookies_file, .*found an unknown key$",
    ):
        load_profile({"default": {"cookie": "x"}})
    with pytest.raises(ConfigError, match="no such profile"):
        load_profile(tmp_path / "none.yaml")
    with pytest.raises(ConfigError, match=r"default\.retries: expected an integer >= 0, found -1$"):
        load_profile({"default": {"retries": -1}})
    # wrong types: one line naming the setting, never a crash inside yt-dlp, never the value
    for setting, value in [
        ("cookies_file", 123),
        ("retries", "3"),
        ("concurrency", True),
        ("sleep_interval_s", "x"),
        ("proxy", ["http://u:pw@10.0.0.1:3128"]),
    ]:
        with pytest.raises(
            ConfigError, match=rf"^profile: default\.{setting}: expected .*, found "
        ) as err:
            load_profile({"default": {setting: value}})
        assert "pw@" not in str(err.value)
    with pytest.raises(
        ConfigError,
        match=r"platforms\.tiktok\.rate_limit: expected a rate like 500K or 2M, found 'fast'",
    ):
        load_profile({"platforms": {"tiktok": {"rate_limit": "fast"}}})
    assert load_profile({"default": {"rate_limit": "2M", "concurrency": None}}).default.rate_limit


def test_prepare_config() -> None:
    assert load_prepare_config(None) == PrepareConfig()
    assert (
        load_prepare_config({"min_duration_s": 0.5}).outputs_key() == PrepareConfig().outputs_key()
    )
    assert load_prepare_config({"short_side": 240}).outputs_key() != PrepareConfig().outputs_key()
    with pytest.raises(ConfigError, match="segments: expected a positive integer, found 0"):
        load_prepare_config({"segments": 0})
    with pytest.raises(
        ConfigError, match=r"min_duration_s: expected at most max_duration_s \(1\), found 9"
    ):
        load_prepare_config({"min_duration_s": 9, "max_duration_s": 1})
    # wrong types are a one-line error, not a traceback or every video failed by ffmpeg
    for setting, value in [
        ("fps", "fast"),
        ("min_duration_s", "x"),
        ("crf", "x"),
        ("require_audio", "maybe"),
        ("cache_size", True),
        ("video_codec", 264),
    ]:
        with pytest.raises(ConfigError, match=rf"^prepare config: {setting}: expected .+, found "):
            load_prepare_config({setting: value})
    assert load_prepare_config({"fps": 12, "require_audio": True}).fps == 12


def test_short_message_redacts_before_cutting() -> None:
    secret = "http://alice:pw5ecret@10.0.0.1:3128"
    message = "x" * 290 + f" proxy {secret} refused"
    short = short_message(message, [secret])
    assert len(short) <= 300 and "alice" not in short and "pw5e" not in short
    assert short_message("a\n  b", []) == "a b"


def _pid_and_value(x: int) -> tuple[int, int]:
    return os.getpid(), x * x


def test_executors_run_every_task_once() -> None:
    local = sorted(run_tasks(_pid_and_value, range(6), workers=2), key=lambda r: r[1])
    assert [v for _, v in local] == [0, 1, 4, 9, 16, 25]
    assert os.getpid() not in {p for p, _ in local}  # ran in worker processes
    serial = list(run_tasks(_pid_and_value, range(3), executor="serial"))
    assert serial == [(os.getpid(), 0), (os.getpid(), 1), (os.getpid(), 4)]
    capped = sorted(
        run_tasks(_pid_and_value, range(4), workers=2, group_of=lambda x: x % 2, group_caps={0: 1}),
        key=lambda r: r[1],
    )
    assert [v for _, v in capped] == [0, 1, 4, 9]
    with pytest.raises(ConfigError, match="unknown executor"):
        list(run_tasks(_pid_and_value, [1], executor="dask"))


def test_pool_workers_keep_freed_memory() -> None:
    # glibc maps a 48 MiB block on its own and unmaps it when freed, so every video paid page
    # faults for its arrays again; a pool worker takes such blocks from the heap and keeps
    # them. A fresh driver process: a long-lived one (pytest) may hold that much free heap.
    script = (
        "from emotions_data.ingest.executors import run_tasks\n"
        "from emotions_data.ingest.worker_memory import keep_freed_memory\n"
        "from emotions_data.testing.malloc import large_block_from_heap as probe\n"
        "print(probe(), list(run_tasks(probe, range(2), workers=2)), keep_freed_memory(), probe())"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    if out.startswith("None"):
        pytest.skip("needs glibc >= 2.33 (mallinfo2)")
    # the driver as glibc leaves it; both workers; the driver after keep_freed_memory
    assert out == "False [True, True] True True"
