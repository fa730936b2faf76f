"""Which copy of a repost group is kept: the unedited original, and why each other copy lost.

What each copy adds or lacks is judged against the other copies of its group
(``ingest.copy_edits``), never by an absolute threshold on one video. The rule, criterion
by criterion (the first that differs decides):

1. **Earliest upload date**, where the platform gives one (a copy with a date before one
   without).
2. **The fewest edits**: added (bars, overlay, intro, outro, colour change, speed change,
   mirror against most copies) and lost (crop, trim: at least a second of footage that
   another copy has). Duration differences under a second never decide.
3. **The widest field of view** (in steps of 5 % of the side: finer is measurement noise).
4. **No re-encode loss**: a copy whose aligned thumbnails are ``LOSSY_DB`` or more below the
   best copy's PSNR against the others lost quality (not in a group of two: their PSNR is
   one measure of both, 4 and 6 then decide nothing).
5. **The highest resolution** of the picture itself (bars not counted).
6. **The best quality against the others** (mean PSNR; in a group of three or more the
   original is the copy closest to all others, each repost having lost something of its own).
7. The smallest ``video_id`` (so every run keeps the same copy).

Every member gets a one-line note: the kept copy names the criterion that put it first; each
other copy names the kept copy and the criterion that put it behind.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from emotions_data.ingest.copy_edits import LOSSY_DB, CopyEdits

#: Field of view compared in steps of this share of the side.
_FOV_STEP = 0.05


@dataclass(frozen=True)
class Member:
    """What the keep rule knows about one copy."""

    video_id: str
    upload_date: str | None
    edits: CopyEdits
    pixels: int  # of the picture, bars excluded

    @property
    def changes(self) -> list[str]:
        return [*self.edits.added, *self.edits.lost]


def member_of(row: dict[str, Any], content_share: float, edits: CopyEdits) -> Member:
    """The keep rule's view of a manifest row, its content box share and its edits."""
    width, height = int(row.get("width") or 0), int(row.get("height") or 0)
    upload = row.get("upload_date")
    return Member(
        video_id=str(row["video_id"]),
        upload_date=str(upload) if upload else None,
        edits=edits,
        pixels=round(width * height * content_share),
    )


def _psnr(m: Member) -> float:
    return m.edits.psnr_db if not math.isnan(m.edits.psnr_db) else 0.0


def _criteria(m: Member, best_psnr: float, pair: bool) -> list[tuple[Any, str]]:
    """(sort value, what it means) per criterion, in the rule's order. ``pair``: the group
    is two copies, whose PSNR is one measure of both (it differs only by which contrast
    the other's was mapped onto, and favours the blurrier copy): it decides nothing."""
    return [
        ((m.upload_date is None, m.upload_date or ""), "upload"),
        (len(m.changes), "edits"),
        (-math.floor(m.edits.field_of_view / _FOV_STEP + 0.5), "view"),
        (False if pair else _psnr(m) < best_psnr - LOSSY_DB, "loss"),
        (-m.pixels, "pixels"),
        (0.0 if pair else -round(_psnr(m), 2), "quality"),
        (m.video_id, "id"),
    ]


def _edits(m: Member) -> str:
    return ", ".join(m.changes) or "none"


def _why(kept: Member, other: Member, criterion: str) -> str:
    if criterion == "upload":
        return f"uploaded earlier ({kept.upload_date} vs {other.upload_date or 'no date'})"
    if criterion == "edits":
        return f"fewer edits ({_edits(kept)} vs {_edits(other)})"
    if criterion == "view":
        return (
            f"wider field of view ({kept.edits.field_of_view:.2f} vs "
            f"{other.edits.field_of_view:.2f} of the widest copy's side)"
        )
    if criterion == "loss":
        return (
            f"less re-encode loss (PSNR against the other copies {_psnr(kept):.1f} vs "
            f"{_psnr(other):.1f} dB)"
        )
    if criterion == "pixels":
        return f"more picture pixels ({kept.pixels} vs {other.pixels})"
    if criterion == "quality":
        return f"closer to the other copies (PSNR {_psnr(kept):.2f} vs {_psnr(other):.2f} dB)"
    return "alike on every criterion, the smaller video_id"


def choose(members: Sequence[Member]) -> tuple[int, dict[int, str]]:
    """(index of the kept member, a note per member index)."""
    best_psnr = max(_psnr(m) for m in members)
    pair = len(members) == 2
    keyed = [[v for v, _ in _criteria(m, best_psnr, pair)] for m in members]
    order = sorted(range(len(members)), key=lambda i: keyed[i])
    kept = order[0]
    names = [n for _, n in _criteria(members[kept], best_psnr, pair)]

    def deciding(i: int) -> str:
        return next(n for n, x, y in zip(names, keyed[kept], keyed[i], strict=True) if x != y)

    notes: dict[int, str] = {}
    runner = order[1]
    notes[kept] = (
        f"kept of {len(members)} copies: {_why(members[kept], members[runner], deciding(runner))}"
    )
    for i in order[1:]:
        notes[i] = f"{members[kept].video_id} kept: {_why(members[kept], members[i], deciding(i))}"
    return kept, notes
