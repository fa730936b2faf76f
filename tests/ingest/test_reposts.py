"""Repost search: the index and the alignment on synthetic hashes, then real reposts end to end."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from emotions_data.ingest.copy_edits import CopyEdits
from emotions_data.ingest.framehash import (
    MIRROR,
    MIRROR_CENTRE,
    N_VARIANTS,
    WORDS,
    VideoHashes,
    hash_video,
)
from emotions_data.ingest.keeprule import Member, choose
from emotions_data.ingest.prepare import prepare
from emotions_data.ingest.reposts import (
    CENTRE,
    MatchSettings,
    align,
    candidate_pairs,
    connected_groups,
    find_reposts,
)
from emotions_data.schema.atomic import sha256_file
from emotions_data.schema.io import read_manifest, write_manifest
from emotions_data.testing.reposts import TRANSFORMS, make_repost, make_source


def _video(words: np.ndarray, valid: np.ndarray | None = None) -> VideoHashes:
    """A video whose every variant is the given (N, WORDS) hashes."""
    hashes = np.repeat(words[:, None, :], N_VARIANTS, axis=1)
    ok = np.ones(len(words), bool) if valid is None else valid
    return VideoHashes(
        hashes,
        ok,
        ~ok,
        np.zeros((len(words), 2), np.float32),
        np.full(len(words), 20.0, np.float32),
        2.0,
        1.0,
    )


def _variants(hashes: np.ndarray) -> VideoHashes:
    """A video of the given (N, N_VARIANTS, WORDS) hashes, every sample valid."""
    n = len(hashes)
    return VideoHashes(
        hashes,
        np.ones(n, bool),
        np.zeros(n, bool),
        np.zeros((n, 2), np.float32),
        np.full(n, 20.0, np.float32),
        2.0,
        1.0,
    )


def _flip_bits(words: np.ndarray, n_bits: int, rng: np.random.Generator) -> np.ndarray:
    out = words.copy()
    for row in out:
        for bit in rng.choice(256, size=n_bits, replace=False):
            row[bit // 64] ^= np.uint64(1) << np.uint64(bit % 64)
    return out


def test_index_finds_close_videos_without_all_pairs() -> None:
    rng = np.random.default_rng(0)
    base = [rng.integers(0, 2**63, size=(20, WORDS), dtype=np.uint64) for _ in range(200)]
    videos = [_video(w) for w in base]
    videos.append(_video(_flip_bits(base[3], 20, rng)))  # 200: a repost of 3
    videos.append(_video(_flip_bits(base[7][5:], 30, rng)))  # 201: a trimmed repost of 7
    found = candidate_pairs(videos, max_distance=60)
    assert (3, 200) in found and (7, 201) in found
    assert len(found) <= 4  # random hashes (~128 bits apart) never become candidates
    matches = find_reposts(videos)
    assert {(m.a, m.b) for m in matches} == {(3, 200), (7, 201)}


def test_alignment_handles_offsets_speed_mirror_and_flat_frames() -> None:
    rng = np.random.default_rng(1)
    words = rng.integers(0, 2**63, size=(30, WORDS), dtype=np.uint64)
    source = _video(words)
    intro = _video(
        np.concatenate([rng.integers(0, 2**63, size=(3, WORDS), dtype=np.uint64), words])
    )
    m = align(source, intro, MatchSettings())
    assert m is not None and m.offset == 3 and (m.a_lead, m.b_lead) == (0, 3) and m.share == 1.0
    fast = _video(words[np.round(np.arange(27) * 1.1).astype(int)])  # 1.1x: every 11th dropped
    m = align(source, fast, MatchSettings())
    assert m is not None and m.share >= 0.9
    # 5 s sped up 1.1x: its line stays within a sample of the plain one, which the vote
    # keeps; the fit through each sample's closest partner says how fast it plays
    short = _video(words[:11])
    m = align(short, _video(words[np.round(np.arange(10) * 1.1).astype(int)]), MatchSettings())
    assert m is not None and m.speed == 1.0 and 0.8 <= m.fitted_speed <= 0.95
    m = align(short, _video(_flip_bits(words[:11], 20, rng)), MatchSettings())
    assert m is not None and m.fitted_speed == 1.0  # as long as its source: as fast
    # a mirrored copy: as shown it resembles nothing; its mirror image is the source
    mirrored = rng.integers(0, 2**63, size=(30, N_VARIANTS, WORDS), dtype=np.uint64)
    mirrored[:, MIRROR] = words
    m = align(
        source,
        VideoHashes(mirrored, source.valid, source.still, source.chroma, source.detail, 2.0, 1.0),
        MatchSettings(),
    )
    assert m is not None and m.mirrored
    # a clip that shares only 5 of 30 seconds, and one whose frames are all too flat to hash
    part = _video(
        np.concatenate([words[:5], rng.integers(0, 2**63, size=(25, WORDS), dtype=np.uint64)])
    )
    assert align(source, part, MatchSettings()) is None
    assert align(source, _video(words, np.zeros(30, bool)), MatchSettings()) is None
    assert connected_groups(5, [(0, 2), (2, 4)]) == [[0, 2, 4]]


_PLAIN = CopyEdits(
    overlay_share=0.0,
    bars=False,
    intro_s=0.0,
    outro_s=0.0,
    trimmed_s=0.0,
    mean_shift=0.0,
    contrast_ratio=1.0,
    saturation_ratio=1.0,
    colour=False,
    field_of_view=1.0,
    tempo=1.0,
    speed=False,
    mirrored=False,
    psnr_db=40.0,
    compared=1,
)


def _member(
    vid: str, upload: str | None = None, pixels: int = 720 * 1280, **edits: object
) -> Member:
    return Member(
        video_id=vid,
        upload_date=upload,
        edits=replace(_PLAIN, **edits),  # type: ignore[arg-type]
        pixels=pixels,
    )


def test_a_mirrored_copy_under_a_logo_found_by_its_centre() -> None:
    # a logo box and a username line move most bits of every whole-picture hash; a
    # mirrored copy under them shows its source's centre mirrored, and only there
    rng = np.random.default_rng(5)
    a = rng.integers(0, 2**63, size=(20, N_VARIANTS, WORDS), dtype=np.uint64)
    b = rng.integers(0, 2**63, size=(20, N_VARIANTS, WORDS), dtype=np.uint64)
    b[:, MIRROR_CENTRE] = _flip_bits(a[:, CENTRE], 24, rng)
    va, vb = _variants(a), _variants(b)
    assert candidate_pairs([va, vb], 60) == {(0, 1)}
    match = align(va, vb, MatchSettings())
    assert match is not None and match.mirrored and match.matched == 20
    # without it, nothing of b is like a
    b[:, MIRROR_CENTRE] = rng.integers(0, 2**63, size=(20, WORDS), dtype=np.uint64)
    assert candidate_pairs([va, _variants(b)], 60) == set()


def test_hash_files_written_before_the_mirrored_centre(tmp_path: Path) -> None:
    # a smooth random picture, drifting: what the mirrored centre of an older file is
    # made of (its centre's bits of odd horizontal frequency flipped) is near the real one
    rng = np.random.default_rng(9)
    coarse = rng.uniform(0, 255, size=(16, 3, 24, 24))
    fine = np.repeat(np.repeat(coarse, 8, axis=2), 8, axis=3)
    frames = np.clip(fine + rng.normal(0, 4, fine.shape), 0, 255).transpose(0, 2, 3, 1)
    hashed = hash_video(np.ascontiguousarray(frames.astype(np.uint8)))
    assert hashed.hashes.shape[1] == N_VARIANTS
    hashed.save(tmp_path / "now.npz")
    with np.load(tmp_path / "now.npz") as data:
        older = {k: data[k] for k in data.files}
    older["hashes"] = older["hashes"][:, :MIRROR_CENTRE]  # as written before it existed
    np.savez(tmp_path / "older.npz", **older)
    loaded = VideoHashes.load(tmp_path / "older.npz")
    assert loaded.hashes.shape == hashed.hashes.shape
    assert (loaded.hashes[:, :MIRROR_CENTRE] == hashed.hashes[:, :MIRROR_CENTRE]).all()
    apart = np.bitwise_count(loaded.hashes[:, MIRROR_CENTRE] ^ hashed.hashes[:, MIRROR_CENTRE])
    unmirrored = np.bitwise_count(hashed.hashes[:, CENTRE] ^ hashed.hashes[:, MIRROR_CENTRE])
    assert np.median(apart.sum(axis=1)) <= 16 < np.median(unmirrored.sum(axis=1)) - 60


def test_keep_rule_order_and_notes() -> None:
    # a copy with more pixels but bars and a logo loses to the plain one
    kept, notes = choose([_member("b", bars=True, overlay_share=0.01, pixels=10**7), _member("a")])
    assert kept == 1 and "fewer edits (none vs bars, overlay)" in notes[0]
    assert "kept of 2" in notes[1]
    # a 0.5 s trim is no edit (under a second never decides): resolution does
    kept, _ = choose([_member("x", trimmed_s=0.0, pixels=10), _member("y", pixels=5)])
    assert kept == 0
    kept, notes = choose([_member("x", trimmed_s=2.0, pixels=10), _member("y", pixels=5)])
    assert kept == 1 and "vs trim" in notes[0]
    # the wider view wins among copies with as many edits; then re-encode loss, then pixels
    kept, notes = choose([_member("c", field_of_view=0.8), _member("d", bars=True)])
    assert kept == 1 and "wider field of view (1.00 vs 0.80" in notes[0]
    kept, notes = choose([_member("c", colour=True, field_of_view=0.8), _member("d", bars=True)])
    assert kept == 1 and "fewer edits (bars vs colour, crop)" in notes[0]
    lossy = [_member("e", psnr_db=33.0, pixels=10**7), _member("f", psnr_db=36.0)]
    kept, notes = choose([*lossy, _member("g", psnr_db=35.8)])
    assert kept == 1 and "less re-encode loss" in notes[0]
    kept, notes = choose(
        [_member("e", psnr_db=35.5, pixels=10**7), lossy[1], _member("g", psnr_db=35.8)]
    )
    assert kept == 0 and "more picture pixels" in notes[1]
    # two copies: their PSNR is one measure of both (it differs only by the contrast the
    # other's was mapped onto, and favours the blurrier copy), so it never decides
    kept, notes = choose(lossy)
    assert kept == 0 and "more picture pixels" in notes[1]
    kept, notes = choose([_member("f", psnr_db=30.0), _member("e", psnr_db=36.0)])
    assert kept == 1 and "the smaller video_id" in notes[0]
    kept, notes = choose([_member("x"), _member("y", upload="20240101", bars=True)])
    assert kept == 1 and "uploaded earlier" in notes[0]


SIZE = {"width": 108, "height": 192, "duration": 4.0}


def _media_row(video_id: str, path: Path, upload_date: str | None = None) -> dict[str, object]:
    """A fetched row of a clip written under ROOT/media/gen."""
    return {
        "video_id": video_id,
        "platform": "gen",
        "source_url": f"file://{path.name}",
        "status": "ok",
        "media_path": f"media/gen/{path.name}",
        "sha256": sha256_file(path),
        "bytes": path.stat().st_size,
        "upload_date": upload_date,
    }


@pytest.mark.ffmpeg
def test_reposts_grouped_with_their_original(tmp_path: Path) -> None:
    media = tmp_path / "root" / "media" / "gen"
    media.mkdir(parents=True)
    made: dict[str, Path] = {}
    for s, portrait in ((1, True), (2, False)):
        w, h = (SIZE["width"], SIZE["height"]) if portrait else (SIZE["height"], SIZE["width"])
        src = make_source(
            media / f"s{s}.mp4", s, width=int(w), height=int(h), duration=SIZE["duration"]
        )
        made[f"s{s}"] = src
        made[f"look{s}"] = make_source(
            media / f"look{s}.mp4", s + 10, width=int(w), height=int(h), duration=SIZE["duration"]
        )
        for kind in TRANSFORMS if s == 1 else ("bars", "mirror", "reencode"):
            made[f"s{s}-{kind}"] = make_repost(src, media / f"s{s}-{kind}.mp4", kind, index=s)
    made["s1-crop+mirror"] = make_repost(
        made["s1"], media / "s1-crop+mirror.mp4", ("crop", "mirror")
    )
    rows = [
        _media_row(
            name.replace("+", "_"), path, upload_date="20240105" if name == "s2-mirror" else None
        )
        for name, path in made.items()
    ]
    root = tmp_path / "root"
    write_manifest(pd.DataFrame(rows), root / "videos.parquet", "videos")
    prepare(root, workers=2, progress=False)
    df = read_manifest(root / "videos.parquet", "videos").df.set_index("video_id")
    for name in df.index:
        family = name.split("-")[0]
        if family.startswith("look"):
            assert df.loc[name, "status"] == "ok", df.loc[name, "error_message"]
        elif name == family:
            # s2's mirrored copy has the only upload date: the rule keeps it over the original
            want = "duplicate" if name == "s2" else "ok"
            assert df.loc[name, "status"] == want, df.loc[name, "error_message"]
        elif name != "s2-mirror":
            assert df.loc[name, "dup_of"] in (family, "s2-mirror"), (name, df.loc[name].to_dict())
    assert (
        df.loc["s2", "dup_of"] == "s2-mirror"
        and "uploaded earlier" in df.loc["s2", "error_message"]
    )
    assert "fewer edits" in df.loc["s1-bars", "error_message"]
    report = read_manifest(root / "reposts.parquet", "reposts").df.set_index("video_id")
    assert (
        report.loc["s1-bars", "edits"] == "bars" and report.loc["s1-overlay", "edits"] == "overlay"
    )
    assert report.loc["s1", "kept"] and not report.loc["s1-bars", "kept"]
    assert (root / "hashes" / "s1.npz").is_file()
    again = prepare(root, workers=2, progress=False)
    assert again.processed == 0 and not again.changed
    shutil.rmtree(media)


@pytest.mark.ffmpeg
def test_textures_the_hash_sees_poorly(tmp_path: Path) -> None:
    # cells: a fine automaton scrolling 4 px a frame, whose 1.1x copy's samples fall between
    # the source's moments (alike only coarse), or under a logo box and a username line
    # that move 80-98 bits of every whole-picture hash (only the centres match); gradients:
    # a smooth picture whose DCT bits follow grain, under a white logo box that is most of
    # its contrast, or cropped and sped up (a mean gradient of 1.5: too flat to hash, but
    # with shapes of its own), or in a landscape frame over its blurred self under a logo
    # (the logo doubles the bar's detail)
    media = tmp_path / "root" / "media" / "gen"
    media.mkdir(parents=True)
    made: dict[str, Path] = {}
    for family, texture, seed, edits in (
        ("cells", "cells", 112, (("speed",), ("crop", "speed"), ("overlay",))),
        # rule 30, denser: mirrored under the logo and the username line, it matches its
        # source in the mirrored centre alone; cropped and sped up, its hash matches as well
        # at speed 1 as at the true 0.91, and only the fitted speed's line shows it; scaled
        # into blurred bars, its fine cells lose contrast (1.38x at full size), which made
        # the original look contrast-boosted against its two copies in bars
        (
            "cellsb",
            "cells",
            132,
            (("mirror", "overlay"), ("crop", "speed"), ("blur-bars",), ("blur-bars", "logo")),
        ),
        (
            "gradients",
            "gradients",
            122,
            (("overlay",), ("mirror", "overlay"), ("crop", "speed"), ("blur-bars", "logo")),
        ),
    ):
        for name, s in ((family, seed), (f"{family}look", seed + 400)):
            made[name] = make_source(
                media / f"{name}.mp4", s, width=360, height=640, duration=6.0, texture=texture
            )
        for edit in edits:
            name = f"{family}-{'_'.join(edit)}"
            made[name] = make_repost(made[family], media / f"{name}.mp4", edit)
    rows = [_media_row(name, path) for name, path in made.items()]
    root = tmp_path / "root"
    write_manifest(pd.DataFrame(rows), root / "videos.parquet", "videos")
    prepare(root, workers=2, progress=False)
    report = read_manifest(root / "reposts.parquet", "reposts").df.set_index("video_id")
    for name in made:
        family = name.split("-")[0]
        if "look" in name:
            assert name not in report.index  # in no group
        else:
            assert report.loc[name, "group_id"] == report.loc[family, "group_id"], name
    # the automaton's original is kept, and judged to add nothing
    assert report.loc["cellsb", "kept"], report.loc["cellsb", "note"]
    assert pd.isna(report.loc["cellsb", "edits"]), report.loc["cellsb", "edits"]
    # the gradient's copies under a logo are judged so, and its original kept
    assert report.loc["gradients", "kept"], report.loc["gradients", "note"]
    assert "overlay" in report.loc["gradients-overlay", "edits"].split(",")


def test_candidate_lines_match_the_lines_weighed_one_speed_at_a_time() -> None:
    """The lines of all speeds at once (``_candidate_lines``) are those a loop over speeds
    with ``np.unique`` weighs, in its order, with the same samples on each."""
    from emotions_data.ingest.reposts import _OFFSETS_TRIED, _SPEEDS, _candidate_lines

    rng = np.random.default_rng(5)
    for _ in range(200):
        n_a, n_b = rng.integers(2, 16, size=2)
        close = rng.random((n_a, n_b)) < rng.uniform(0.05, 0.6)
        i, j = np.nonzero(close)
        if len(i) == 0:
            continue
        expected = []
        for speed in _SPEEDS:
            offsets, votes = np.unique(np.rint(j - speed * i), return_counts=True)
            for offset in offsets[np.argsort(-votes, kind="stable")[:_OFFSETS_TRIED]]:
                on = np.abs(j - speed * i - offset) <= 1.0
                matched = min(len(np.unique(i[on])), len(np.unique(j[on])))
                expected.append((float(speed), float(offset), matched, i[on].min(), j[on].min()))
        lines = _candidate_lines(i, j, close.shape)
        found = [
            (s, o, int(m), int(la), int(lb))
            for (s, o), m, la, lb in zip(
                lines.speed_offset, lines.matched, lines.a_lead, lines.b_lead, strict=True
            )
        ]
        assert found == expected
