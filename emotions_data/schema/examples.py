"""One tiny, valid frame of each manifest kind: the examples ``manifest docs`` writes.

Part of the contract (SCHEMA.md shows them), so it lives with the schema; tests reuse it
through ``emotions_data.testing.manifests``.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd


def example_frames() -> dict[str, pd.DataFrame]:
    """One tiny, valid frame of each manifest kind (deterministic)."""
    t0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    videos = pd.DataFrame(
        {
            "video_id": ["tiktok-7001", "douyin-7002", "3f2a9c0d1e2b4a5c"],
            "platform": ["tiktok", "douyin", "kuaishou"],
            "source_url": [
                "https://www.tiktok.com/@a/video/7001",
                "https://www.douyin.com/video/7002",
                "https://v.kuaishou.com/xyz",
            ],
            "status": ["ok", "duplicate", "failed"],
            "error_kind": [None, None, "unavailable"],
            "error_message": [None, None, "HTTP Error 404: Not Found"],
            "media_path": ["media/tiktok/tiktok-7001.mp4", "media/douyin/douyin-7002.mp4", None],
            "sha256": ["ab" * 32, "cd" * 32, None],
            "bytes": [1_234_567, 1_100_000, None],
            "duration_s": [15.0, 15.1, None],
            "width": [720, 720, None],
            "height": [1280, 1280, None],
            "fps": [30.0, 30.0, None],
            "has_audio": [True, True, None],
            "audio_sample_rate": [44100, 44100, None],
            "uploader_id": ["u1", "u2", None],
            "fetched_at": [t0, t0, None],
            "dup_of": [None, "tiktok-7001", None],
            "cache_path": ["cache/tiktok-7001", None, None],
        }
    )
    annotations = pd.DataFrame(
        {
            "video_id": ["tiktok-7001"] * 3,
            "annotator_id": ["a01", "a02", "a03"],
            "stage": ["primary"] * 3,
            "label": ["excitation", "excitation", "relaxation"],
            "created_at": [t0] * 3,
            "lead_time_s": [12.5, 8.0, 20.1],
            "source": ["label-studio"] * 3,
            "group_id": ["A"] * 3,
            "ls_project_id": [1] * 3,
            "ls_task_id": [10] * 3,
            "ls_annotation_id": [100, 101, 102],
        }
    )
    labels = pd.DataFrame(
        {
            "video_id": ["tiktok-7001"],
            "label": ["excitation"],
            "method": ["majority"],
            "n_votes": [3],
            "support": [2 / 3],
            "entropy": [0.918],
            "confidence": [2 / 3],
            "decided_stage": ["primary"],
            "expert_changed": [False],
        }
    )
    split = pd.DataFrame(
        {"video_id": ["tiktok-7001"], "label": ["excitation"], "split": ["train"], "fold": [None]}
    )
    groups = pd.DataFrame(
        {
            "annotator_id": ["a01", "a02", "a03"],
            "group_id": ["A", "A", "B"],
            "leader": [True, False, True],
            "active": [True, True, False],
            "reason": [None, None, "kappa 0.12 < 0.40 against the leave-one-out consensus"],
            "updated_stage": [None, None, "primary"],
            "experience_years": [3.0, 1.5, 0.5],
        }
    )
    reposts = pd.DataFrame(
        {
            "group_id": ["tiktok-7001", "tiktok-7001"],
            "video_id": ["tiktok-7001", "douyin-9002"],
            "kept": [True, False],
            "edits": [None, "bars,overlay"],
            "content_share": [1.0, 0.32],
            "overlay_share": [0.0, 0.011],
            "intro_s": [0.0, 0.0],
            "outro_s": [0.0, 0.0],
            "trimmed_s": [0.0, 0.0],
            "mean_shift": [0.3, -0.3],
            "contrast_ratio": [1.01, 0.99],
            "saturation_ratio": [1.0, 1.0],
            "field_of_view": [1.0, 1.0],
            "tempo": [1.0, 1.0],
            "mirrored": [False, False],
            "psnr_db": [31.2, 31.2],
            "compared": [1, 1],
            "note": [
                "kept of 2 copies: fewer edits (none vs bars, overlay)",
                "tiktok-7001 kept: fewer edits (none vs bars, overlay)",
            ],
        }
    )
    return {
        "videos": videos,
        "annotations": annotations,
        "labels": labels,
        "split": split,
        "groups": groups,
        "reposts": reposts,
    }
