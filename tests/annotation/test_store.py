from __future__ import annotations

import pandas as pd

from emotions_data.annotation.store import replace_stage


def _rows(stage: str, videos: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "video_id": videos,
            "annotator_id": ["a"] * len(videos),
            "stage": [stage] * len(videos),
            "label": ["fear"] * len(videos),
            "source": ["simulated"] * len(videos),
        }
    )


def test_stages_keep_the_order_they_were_pulled_in() -> None:
    # "primary" sorts after "cross_check_a" alphabetically, but was pulled first
    frame = replace_stage(_rows("primary", []), _rows("primary", ["v2", "v1"]), "primary")
    frame = replace_stage(frame, _rows("cross_check_a", ["v1"]), "cross_check_a")
    assert list(dict.fromkeys(frame["stage"])) == ["primary", "cross_check_a"]
    assert frame["video_id"].tolist() == ["v1", "v2", "v1"]
    # pulling primary again replaces its rows in place
    again = replace_stage(frame, _rows("primary", ["v3"]), "primary")
    assert again["stage"].tolist() == ["primary", "cross_check_a"]
    assert again["video_id"].tolist() == ["v3", "v1"]
