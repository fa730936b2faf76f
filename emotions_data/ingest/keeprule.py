"""Which copy of a repost group is kept: the original, and why.

The rule, criterion by criterion (the first that differs decides):

1. **Earliest upload date**, where the platform gives one (a copy with a date before one
   without).
2. **Nothing added**: the fewest of added bars (the picture fills under 90 % of the frame),
   an added intro (the copy starts with stills that the other copies lack) and an overlay (a
   part of the picture that never changes while the rest moves: a logo, a username).
3. **The most content**: a copy more than a second shorter than the longest copy lost
   content (a trim, a clip cut from it, a sped-up copy); differences under a second (an
   encoder's padding) never decide.
4. **The highest resolution** of the picture itself (bars not counted).
5. **The most bits per pixel and second**: every re-encode loses some.
6. The smallest ``video_id`` (so every run keeps the same copy).

Every member gets a one-line note: the kept copy names the criterion that put it first; each
duplicate names the kept copy and the criterion that put it behind.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from emotions_data.ingest.framehash import VideoHashes
from emotions_data.ingest.reposts import PairMatch

#: The picture fills less than this share of the frame: bars were added.
BARS_BELOW = 0.9
#: This share of the picture never changes: an overlay was added.
OVERLAY_FROM = 0.02


@dataclass(frozen=True)
class Member:
    """What the keep rule knows about one copy."""

    video_id: str
    upload_date: str | None
    bars: bool
    intro: bool
    overlay: bool
    content_s: float  # duration without an added intro
    pixels: int  # of the picture, bars excluded
    width: int
    height: int
    bits_per_pixel: float

    @property
    def added(self) -> list[str]:
        return [
            n
            for n, f in (("bars", self.bars), ("intro", self.intro), ("overlay", self.overlay))
            if f
        ]


def intro_leads(matches: Sequence[PairMatch], hashes: Sequence[VideoHashes]) -> dict[int, int]:
    """Videos that start with stills their repost lacks (an added intro card): lead samples."""
    found: dict[int, int] = {}
    for m in matches:
        for me, lead, other_lead in ((m.a, m.a_lead, m.b_lead), (m.b, m.b_lead, m.a_lead)):
            if lead > 0 and other_lead == 0 and hashes[me].still[:lead].mean() >= 0.5:
                found[me] = max(found.get(me, 0), lead)
    return found


def member_of(row: dict[str, Any], video: VideoHashes, intro_lead: int = 0) -> Member:
    """``intro_lead``: samples of an added intro (``intro_leads``), 0 for none."""
    width, height = int(row.get("width") or 0), int(row.get("height") or 0)
    duration = max(0.0, float(row.get("duration_s") or 0.0) - intro_lead / video.fps)
    pixels = round(width * height * video.content_share)
    size = float(row.get("bytes") or 0.0)
    bpp = size * 8.0 / max(1.0, width * height * max(duration, 0.1))
    upload = row.get("upload_date")
    return Member(
        video_id=str(row["video_id"]),
        upload_date=str(upload) if upload else None,
        bars=video.content_share < BARS_BELOW,
        intro=intro_lead > 0,
        overlay=video.static_share >= OVERLAY_FROM,
        content_s=duration,
        pixels=pixels,
        width=width,
        height=height,
        bits_per_pixel=bpp,
    )


def _criteria(m: Member, longest: float) -> list[tuple[Any, str]]:
    """(sort value, what it means) per criterion, in the rule's order."""
    return [
        ((m.upload_date is None, m.upload_date or ""), "upload"),
        (len(m.added), "added"),
        (m.content_s < longest - 1.0, "length"),
        (-m.pixels, "pixels"),
        (-round(m.bits_per_pixel, 3), "bitrate"),
        (m.video_id, "id"),
    ]


def _why(kept: Member, other: Member, criterion: str) -> str:
    if criterion == "upload":
        return f"uploaded earlier ({kept.upload_date} vs {other.upload_date or 'no date'})"
    if criterion == "added":
        added = ", ".join(other.added) or "nothing"
        return f"fewer additions ({', '.join(kept.added) or 'none'} vs {added})"
    if criterion == "length":
        return f"more content ({kept.content_s:.1f} s vs {other.content_s:.1f} s)"
    if criterion == "pixels":
        return f"more picture pixels ({kept.pixels} vs {other.pixels})"
    if criterion == "bitrate":
        return f"more bits per pixel ({kept.bits_per_pixel:.3f} vs {other.bits_per_pixel:.3f})"
    return "alike on every criterion, the smaller video_id"


def choose(members: Sequence[Member]) -> tuple[int, dict[int, str]]:
    """(index of the kept member, a note per member index)."""
    longest = max(m.content_s for m in members)
    keyed = [[v for v, _ in _criteria(m, longest)] for m in members]
    order = sorted(range(len(members)), key=lambda i: keyed[i])
    kept = order[0]
    names = [n for _, n in _criteria(members[kept], longest)]

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
