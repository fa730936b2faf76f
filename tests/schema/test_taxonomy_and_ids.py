from __future__ import annotations

from pathlib import Path

import pytest

from emotions_data.schema import TaxonomyError, load_taxonomy
from emotions_data.schema.docs import render_schema_markdown
from emotions_data.schema.ids import make_video_id

#: The checkout (manifests/SCHEMA.md is not shipped in the wheel).
PROJECT_DIR = Path(__file__).resolve().parents[2]


def test_default_taxonomy_is_the_papers_order_and_polarity() -> None:
    tax = load_taxonomy()
    assert tax.classes == ("excitation", "fear", "neutral", "relaxation", "sadness", "tension")
    assert {c for c, p in tax.polarity.items() if p == "positive"} == {"excitation", "relaxation"}
    assert {c for c, p in tax.polarity.items() if p == "negative"} == {"fear", "sadness", "tension"}
    assert tax.polarity_lambdas == {"positive": 0.5, "neutral": 0.5, "negative": 0.5}
    assert tax.index("tension") == 5


def test_bad_taxonomies(tmp_path: Path) -> None:
    with pytest.raises(TaxonomyError, match="unknown taxonomy 'nope'; bundled: emotions6"):
        load_taxonomy("nope")
    bad = tmp_path / "t.yaml"
    bad.write_text("classes: [a, a]\n")
    with pytest.raises(TaxonomyError, match="duplicates"):
        load_taxonomy(bad)
    bad2 = tmp_path / "t2.yaml"
    bad2.write_text("classes: [a, b]\npolarity: {a: pos, c: neg}\n")
    with pytest.raises(TaxonomyError, match=r"unknown class\(es\) \['c'\]"):
        load_taxonomy(bad2)
    with pytest.raises(TaxonomyError, match="'joy' is not in taxonomy"):
        load_taxonomy().index("joy")


def test_video_ids() -> None:
    assert make_video_id("https://x/1", "TikTok", "7001") == "tiktok-7001"
    assert make_video_id("https://x/1", "Generic", "a/b c") == "generic-a_b_c"
    url_id = make_video_id(" https://x/1 ")
    assert url_id == make_video_id("https://x/1") and len(url_id) == 16
    assert url_id != make_video_id("https://x/2")


def test_schema_md_is_not_stale() -> None:
    committed = (PROJECT_DIR / "manifests" / "SCHEMA.md").read_text()
    assert committed == render_schema_markdown(), "run: emotions-data manifest docs --out manifests"
