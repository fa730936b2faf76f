"""The manifest contract: one declared pyarrow schema per kind, in one place.

Every stage talks to the next through these Parquet kinds. ``SCHEMA.md`` is generated
from the declarations below (``emotions-data manifest docs``) and a test fails when it is stale.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

SCHEMA_VERSION = 1

#: Timestamps are stored as UTC microseconds.
TIMESTAMP = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    nullable: bool
    doc: str
    #: Allowed values for a string column (``None``: any).
    allowed: tuple[str, ...] | None = None
    #: A path relative to the dataset root (absolute paths and ``..`` are rejected).
    is_path: bool = False
    #: Values must be labels of the manifest's taxonomy.
    is_label: bool = False
    #: Values become path components (``schema.safety``): safe names only.
    is_name: bool = False


@dataclass(frozen=True)
class ManifestKind:
    name: str
    doc: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    #: Columns beyond the declared ones are kept (e.g. carried from the input URL list).
    allow_extra_columns: bool = False
    metadata_doc: dict[str, str] = field(default_factory=dict)

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, c.type, nullable=c.nullable) for c in self.columns])

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


VIDEO_STATUSES = ("ok", "failed", "filtered", "duplicate")
ERROR_KINDS = (
    "unavailable",
    "private",
    "geo_blocked",
    "login_required",
    "rate_limited",
    "network",
    "unsupported_url",
    "bad_media",
    "filtered",
    "other",
)
ANNOTATION_SOURCES = ("label-studio", "import", "simulated")
LABEL_METHODS = ("majority", "dawid_skene", "expert")
SPLITS = ("train", "val", "test")

_S, _I64, _I32, _F64, _B = pa.string(), pa.int64(), pa.int32(), pa.float64(), pa.bool_()

VIDEOS = ManifestKind(
    name="videos",
    doc="One row per input URL: fetch, probe, filter and dedup results, media and cache paths.",
    key=("video_id",),
    allow_extra_columns=True,
    columns=(
        Column(
            "video_id",
            _S,
            False,
            "Stable id: `<platform>-<native id>` or sha256(url)[:16].",
            is_name=True,
        ),
        Column(
            "platform",
            _S,
            False,
            "Platform name (yt-dlp extractor key, lower case) or the input's `platform`.",
            is_name=True,
        ),
        Column("source_url", _S, False, "The URL as given in the input list."),
        Column("status", _S, False, "Where the video stands.", allowed=VIDEO_STATUSES),
        Column(
            "error_kind",
            _S,
            True,
            "Why it is not `ok` (null when ok or duplicate).",
            allowed=ERROR_KINDS,
        ),
        Column("error_message", _S, True, "One-line reason, secrets removed."),
        Column("media_path", _S, True, "Downloaded original, relative to the root.", is_path=True),
        Column("sha256", _S, True, "sha256 of the original media file."),
        Column("bytes", _I64, True, "Size of the original media file."),
        Column("duration_s", _F64, True, "Duration in seconds (ffprobe)."),
        Column("width", _I32, True, "Frame width in pixels (ffprobe, rotation applied)."),
        Column("height", _I32, True, "Frame height in pixels (ffprobe, rotation applied)."),
        Column("fps", _F64, True, "Average frame rate (ffprobe)."),
        Column("has_audio", _B, True, "Whether an audio stream exists."),
        Column("audio_sample_rate", _I32, True, "Sample rate of the first audio stream."),
        Column("video_codec", _S, True, "Codec of the first video stream."),
        Column("audio_codec", _S, True, "Codec of the first audio stream."),
        Column("title", _S, True, "Title from the platform metadata."),
        Column(
            "uploader_id",
            _S,
            True,
            "Uploader id from the platform metadata (used for leakage-free splits).",
        ),
        Column("upload_date", _S, True, "Upload date, YYYYMMDD."),
        Column("view_count", _I64, True, "View count where the platform gives it."),
        Column("like_count", _I64, True, "Like count where the platform gives it."),
        Column("fetched_at", TIMESTAMP, True, "When the download finished (UTC)."),
        Column(
            "phash",
            _S,
            True,
            "256-bit frame hash of the middle second (hex); the per-second hashes that find "
            "reposts are in `hashes/<video_id>.npz`.",
        ),
        Column("dup_of", _S, True, "video_id of the kept copy when status is `duplicate`."),
        Column(
            "normalized_path",
            _S,
            True,
            "Normalised media (short side, fps, h264/aac).",
            is_path=True,
        ),
        Column("audio_path", _S, True, "16 kHz mono WAV extracted from the media.", is_path=True),
        Column(
            "cache_path", _S, True, "Training cache folder (frames + audio features).", is_path=True
        ),
    ),
)

ANNOTATIONS = ManifestKind(
    name="annotations",
    doc="Long format, one row per judgement (crowd-kit's task/worker/label).",
    key=("video_id", "annotator_id", "stage"),
    columns=(
        Column("video_id", _S, False, "The judged video.", is_name=True),
        Column(
            "annotator_id", _S, False, "Who judged (the roster's id, never a Label Studio e-mail)."
        ),
        Column(
            "stage",
            _S,
            False,
            "Protocol stage (primary, cross_check_a, cross_check_b, expert, ...).",
            is_name=True,
        ),
        Column("label", _S, False, "One class of the taxonomy.", is_label=True),
        Column("created_at", TIMESTAMP, True, "When the judgement was made (UTC)."),
        Column("lead_time_s", _F64, True, "Seconds the annotator spent on the task."),
        Column("source", _S, False, "Where the row came from.", allowed=ANNOTATION_SOURCES),
        Column(
            "group_id",
            _S,
            True,
            "The annotator group whose project held the task.",
            is_name=True,
        ),
        Column("ls_project_id", _I64, True, "Label Studio project id."),
        Column("ls_task_id", _I64, True, "Label Studio task id."),
        Column("ls_annotation_id", _I64, True, "Label Studio annotation id."),
    ),
)

LABELS = ManifestKind(
    name="labels",
    doc="One final label per video, with its provenance.",
    key=("video_id",),
    columns=(
        Column("video_id", _S, False, "The labelled video.", is_name=True),
        Column("label", _S, False, "Final class.", is_label=True),
        Column("method", _S, False, "How the label was decided.", allowed=LABEL_METHODS),
        Column("n_votes", _I32, False, "Crowd judgements behind the label (expert excluded)."),
        Column("support", _F64, False, "Share of crowd votes for the final label."),
        Column("entropy", _F64, False, "Entropy (bits) of the crowd vote distribution."),
        Column(
            "confidence",
            _F64,
            False,
            "Posterior probability of the label (vote share for majority).",
        ),
        Column(
            "decided_stage",
            _S,
            False,
            "Stage whose judgements decided the label.",
            is_name=True,
        ),
        Column(
            "expert_changed", _B, False, "The expert's label differs from the crowd's majority."
        ),
    ),
)

SPLIT = ManifestKind(
    name="split",
    doc="One row per video of a split or dataset variant; variant name, seed and parameters in the metadata.",
    key=("video_id",),
    columns=(
        Column("video_id", _S, False, "The video.", is_name=True),
        Column("label", _S, False, "Its final class.", is_label=True),
        Column("split", _S, False, "Which split it belongs to.", allowed=SPLITS),
        Column("fold", _I32, True, "Cross-validation fold (null without --folds)."),
    ),
    metadata_doc={
        "emotions_data.variant": "Variant name (full, balanced, test-oriented, ...).",
        "emotions_data.seed": "Seed of the sampling.",
    },
)

GROUPS = ManifestKind(
    name="groups",
    doc="One row per annotator: the balanced group it belongs to, leadership, and personnel adjustments.",
    key=("annotator_id",),
    allow_extra_columns=True,
    columns=(
        Column("annotator_id", _S, False, "Roster id of the annotator."),
        Column("group_id", _S, False, "Group name (A, B, C, ...).", is_name=True),
        Column("leader", _B, False, "Whether the annotator leads the group."),
        Column("active", _B, False, "False once removed by a consistency evaluation."),
        Column("reason", _S, True, "Why the annotator was moved or removed (null when untouched)."),
        Column("updated_stage", _S, True, "Stage whose evaluation last changed this row."),
    ),
)

REPOST_EDITS = ("bars", "overlay", "intro", "outro", "colour", "speed", "mirror", "crop", "trim")

REPOSTS = ManifestKind(
    name="reposts",
    doc=(
        "One row per copy of each repost group `prepare` found (`ROOT/reposts.parquet`): what "
        "the copy adds or lacks against the other copies of its group, which copy was kept "
        "and why each other copy lost (docs/reposts.md)."
    ),
    key=("video_id",),
    columns=(
        Column("group_id", _S, False, "video_id of the group's kept copy.", is_name=True),
        Column("video_id", _S, False, "The copy.", is_name=True),
        Column("kept", _B, False, "Whether this copy is the one kept."),
        Column(
            "edits",
            _S,
            True,
            "What it adds or lacks against the others, comma-separated, of: "
            + ", ".join(REPOST_EDITS)
            + " (null: none).",
        ),
        Column(
            "content_share", _F64, False, "Share of its frame the picture fills (bars excluded)."
        ),
        Column(
            "overlay_share",
            _F64,
            False,
            "Share of its picture covered by static pixels the other copies lack (a logo, a caption).",
        ),
        Column(
            "intro_s",
            _F64,
            False,
            "Seconds of an added intro (no match in another copy, not footage).",
        ),
        Column("outro_s", _F64, False, "Seconds of an added outro."),
        Column("trimmed_s", _F64, False, "Seconds of footage another copy has and this one lacks."),
        Column("mean_shift", _F64, False, "Mean grey level minus the other copies' (median)."),
        Column("contrast_ratio", _F64, False, "Contrast over the other copies' (median)."),
        Column("saturation_ratio", _F64, False, "Saturation over the other copies' (median)."),
        Column(
            "field_of_view",
            _F64,
            False,
            "Side of its field of view over the widest copy's (below 1: cropped).",
        ),
        Column("tempo", _F64, False, "Playback rate over the other copies' (median)."),
        Column("mirrored", _B, False, "Mirrored against most of the other copies."),
        Column(
            "psnr_db",
            _F64,
            True,
            "Mean PSNR of its aligned thumbnails against the other copies, colours matched.",
        ),
        Column("compared", _I32, False, "Other copies it was aligned and compared with."),
        Column("note", _S, False, "Why it was kept, or which copy was kept and why."),
    ),
)

KINDS: dict[str, ManifestKind] = {
    k.name: k for k in (VIDEOS, ANNOTATIONS, LABELS, SPLIT, GROUPS, REPOSTS)
}

#: Key-value metadata every manifest carries (keys are prefixed with ``emotions_data.``).
COMMON_METADATA = {
    "kind": "videos | annotations | labels | split | groups | reposts",
    "schema_version": f"integer, currently {SCHEMA_VERSION}",
    "created_by": "the command line (or function) that wrote the file",
    "created_at": "ISO-8601 UTC time of writing",
    "params": "JSON object of the parameters that made the file",
    "parents": "JSON list of {path, sha256} of the manifests it was made from",
    "taxonomy": "JSON of the taxonomy (name, classes, polarity) that labels are checked against",
}
