"""The blinding's filter check and task scrub, on generated input (no server: pure functions).

The middleware module imports only the standard library at the top (Django is imported inside
the functions that need it), so these run in the project's venv.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emotions_data.annotation.ls_plugin.emotions_data_ls_blinding import (
    MAX_FILTER_DEPTH,
    ROUTES,
    TASK_FIELDS,
    Denied,
    Route,
    check_filters,
    check_query,
    check_selected_items,
    check_view_body,
    route_index,
    scrub_task,
)

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: The columns of other people's work Label Studio 1.23.2 offers (prepare_params.Column and
#: data_manager/functions.get_all_columns), plus names it does not know at all.
FORBIDDEN_COLUMNS = [
    "filter:tasks:annotations_results",
    "filter:tasks:annotators",
    "filter:tasks:total_annotations",
    "filter:tasks:cancelled_annotations",
    "filter:tasks:completed_at",
    "filter:tasks:updated_at",
    "filter:tasks:updated_by",
    "filter:tasks:annotations_ids",
    "filter:tasks:predictions_results",
    "filter:tasks:predictions_score",
    "filter:tasks:avg_lead_time",
    "filter:tasks:draft_exists",
    "filter:tasks:agreement",
    "filter:tasks:reviewers",
    "filter:tasks:is_labeled",
    "filter:tasks:annotations__result",  # an ORM traversal
    "filter:tasks:data.video__annotations",  # a lookup hidden behind a data field
    "filter:tasks:data.",
    "filter:tasks:no_such_column",
    "filter:tasks:-total_annotations",
    "tasks:annotations_results",  # no filter: prefix (Label Studio skips it; refused anyway)
    "filter:annotations:result",
]


def leaf(column: str, depth_child: dict[str, Any] | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {
        "filter": column,
        "operator": "greater" if column.endswith(("id", "inner_id")) else "contains",
        "type": "Number" if column.endswith(("id", "inner_id")) else "String",
        "value": 0 if column.endswith(("id", "inner_id")) else "x",
    }
    if depth_child is not None:
        item["child_filter"] = depth_child
    return item


safe_items = st.one_of(
    st.builds(
        lambda col, op, v: {"filter": col, "operator": op, "type": "Number", "value": v},
        st.sampled_from(["filter:tasks:id", "filter:tasks:inner_id"]),
        st.sampled_from(["equal", "not_equal", "greater", "less", "less_or_equal"]),
        st.integers(-(10**6), 10**6),
    ),
    st.builds(
        lambda field, op, v: {
            "filter": f"filter:tasks:data.{field}",
            "operator": op,
            "type": "String",
            "value": v,
        },
        st.sampled_from(["video", "video_id", "meta.platform", "$undefined$"]),
        st.sampled_from(["contains", "not_contains", "equal", "regex"]),
        st.text(alphabet="abcXYZ019 ", max_size=12),
    ),
    st.builds(
        lambda lo, hi: {
            "filter": "filter:tasks:id",
            "operator": "in",
            "type": "Number",
            "value": {"min": lo, "max": hi},
        },
        st.integers(0, 100),
        st.integers(0, 100),
    ),
)


def chain(items: list[dict[str, Any]]) -> dict[str, Any]:
    """``items[0]`` with ``items[1]`` as its child, and so on down."""
    head = dict(items[0])
    if len(items) > 1:
        head["child_filter"] = chain(items[1:])
    return head


@st.composite
def nested_with_forbidden(draw: st.DrawFn) -> tuple[dict[str, Any], int]:
    """Filters of safe chains, one of which holds a forbidden column at a random depth."""
    chains = draw(st.lists(st.lists(safe_items, min_size=1, max_size=4), min_size=1, max_size=3))
    which = draw(st.integers(0, len(chains) - 1))
    depth = draw(st.integers(0, min(len(chains[which]), MAX_FILTER_DEPTH - 1)))
    bad = leaf(draw(st.sampled_from(FORBIDDEN_COLUMNS)))
    chains[which] = [*chains[which][:depth], bad, *chains[which][depth:]]
    items = [chain(c) for c in chains]
    return {"conjunction": draw(st.sampled_from(["and", "or"])), "items": items}, depth + 1


@SETTINGS
@given(nested_with_forbidden())
def test_a_forbidden_column_at_any_depth_is_refused(case: tuple[dict[str, Any], int]) -> None:
    filters, _depth = case
    with pytest.raises(Denied) as refused:
        check_filters(filters, [])
    assert refused.value.status == 403
    # the same filters in every place a selection can travel
    with pytest.raises(Denied):
        check_query({"filters": filters})
    with pytest.raises(Denied):
        check_view_body({"project": 1, "data": {"filters": filters}})


@SETTINGS
@given(
    st.lists(st.lists(safe_items, min_size=1, max_size=MAX_FILTER_DEPTH), max_size=4),
    st.lists(
        st.sampled_from(["tasks:id", "-tasks:id", "tasks:inner_id", "-tasks:data.video_id"]),
        max_size=2,
    ),
)
def test_safe_nesting_at_any_depth_is_accepted(
    chains: list[list[dict[str, Any]]], ordering: list[str]
) -> None:
    filters = {"conjunction": "and", "items": [chain(c) for c in chains]}
    check_filters(filters, ordering)
    check_query({"filters": filters, "ordering": ordering, "selectedItems": {"all": True}})
    check_view_body({"project": 1, "data": {"filters": filters, "ordering": ordering}})


def test_the_hole_of_issue_22_is_closed() -> None:
    # The filter of the report: a harmless parent, the labels of other people in its child.
    child = leaf("filter:tasks:annotations_results")
    with pytest.raises(Denied, match="annotations_results"):
        check_filters({"conjunction": "and", "items": [leaf("filter:tasks:id", child)]}, [])
    annotators = {"filter": "filter:tasks:annotators", "operator": "contains", "type": "List"}
    with pytest.raises(Denied, match="annotators"):
        check_filters(
            {"conjunction": "or", "items": [leaf("filter:tasks:id", {**annotators, "value": 7})]},
            [],
        )


def test_nesting_deeper_than_the_limit_is_refused_as_malformed() -> None:
    deep = chain([leaf("filter:tasks:id")] * (MAX_FILTER_DEPTH + 1))
    with pytest.raises(Denied) as refused:
        check_filters({"conjunction": "and", "items": [deep]}, [])
    assert refused.value.status == 400
    check_filters({"conjunction": "and", "items": [chain([leaf("filter:tasks:id")] * 8)]}, [])


@pytest.mark.parametrize(
    "filters",
    [
        [],  # not an object
        {"conjunction": "xor", "items": []},
        {"conjunction": "and"},  # no items
        {"conjunction": "and", "items": {}},
        {"conjunction": "and", "items": [], "child_filter": {}},  # a key Label Studio ignores
        {"conjunction": "and", "items": ["filter:tasks:id"]},
        {"conjunction": "and", "items": [{**leaf("filter:tasks:id"), "filters": []}]},
        {"conjunction": "and", "items": [{**leaf("filter:tasks:id"), "child_filter": "x"}]},
        {"conjunction": "and", "items": [{**leaf("filter:tasks:id"), "value": None}]},
        {"conjunction": "and", "items": [{**leaf("filter:tasks:id"), "value": "abc"}]},
        {"conjunction": "and", "items": [{**leaf("filter:tasks:id"), "value": [1, 2]}]},
        {"conjunction": "and", "items": [{**leaf("filter:tasks:id"), "operator": "bogus"}]},
        {"conjunction": "and", "items": [{**leaf("filter:tasks:id"), "operator": "contains"}]},
        {"conjunction": "and", "items": [{**leaf("filter:tasks:id"), "type": "String"}]},
        {"conjunction": "and", "items": [{**leaf("filter:tasks:id"), "operator": "in"}]},
        {"conjunction": "and", "items": [{"filter": "filter:tasks:id", "operator": "equal"}]},
        {
            "conjunction": "and",
            "items": [{**leaf("filter:tasks:data.video"), "type": "Datetime", "value": "today"}],
        },
        {
            "conjunction": "and",
            "items": [{**leaf("filter:tasks:data.video"), "operator": "regex", "value": "("}],
        },
    ],
)
def test_malformed_filters_answer_400_not_a_server_error(filters: Any) -> None:
    with pytest.raises(Denied) as refused:
        check_filters(filters, [])
    assert refused.value.status == 400


@pytest.mark.parametrize("column", [None, 7, ["filter:tasks:id"], {"id": 1}, ""])
def test_a_column_name_that_is_not_a_text_is_refused(column: Any) -> None:
    with pytest.raises(Denied) as refused:
        check_filters({"conjunction": "and", "items": [{**leaf("x"), "filter": column}]}, [])
    assert refused.value.status == 400


@pytest.mark.parametrize(
    "ordering",
    [
        ["tasks:total_annotations"],
        ["-tasks:annotators"],
        ["tasks:-total_annotations"],  # Label Studio reads a "-" after the prefix too
        ["tasks:id", "tasks:completed_at"],  # only the first is applied; all are checked
        ["total_annotations"],
        ["tasks:data.x__annotations"],
    ],
)
def test_forbidden_orderings_are_refused(ordering: list[str]) -> None:
    with pytest.raises(Denied) as refused:
        check_filters(None, ordering)
    assert refused.value.status == 403


@pytest.mark.parametrize("ordering", ["tasks:id", [1], [None], {"a": 1}])
def test_malformed_orderings_answer_400(ordering: Any) -> None:
    with pytest.raises(Denied) as refused:
        check_filters(None, ordering)
    assert refused.value.status == 400


def test_view_bodies_check_every_place_a_filter_is_stored() -> None:
    bad = {
        "conjunction": "and",
        "items": [leaf("filter:tasks:id", leaf("filter:tasks:annotators"))],
    }
    with pytest.raises(Denied):
        check_view_body({"project": 1, "data": {"filters": bad}})
    with pytest.raises(Denied):
        check_view_body({"project": 1, "filters": bad})
    with pytest.raises(Denied):  # Label Studio's storage form, never sent by the UI
        check_view_body({"project": 1, "filter_group": {"conjunction": "and", "filters": []}})
    with pytest.raises(Denied):
        check_view_body({"project": 1, "data": {"ordering": ["-tasks:total_annotations"]}})
    with pytest.raises(Denied):
        check_view_body({"project": 1, "data": []})
    with pytest.raises(Denied):  # Label Studio would raise on it in every later task list
        check_view_body({"project": 1, "data": {"hiddenColumns": {"explore": []}}})
    # what the data manager sends for a new tab
    check_view_body(
        {
            "project": 1,
            "data": {
                "title": "Default",
                "type": "list",
                "target": "tasks",
                "filters": {"conjunction": "and", "items": []},
                "ordering": [],
                "hiddenColumns": {"explore": ["tasks:annotators"], "labeling": []},
                "columnsDisplayType": {},
            },
        }
    )
    check_view_body({"project": 1, "data": {"filters": {}, "ordering": {}}})


@pytest.mark.parametrize(
    "selected",
    [
        {"all": True},
        {"all": True, "excluded": [1, 2]},
        {"all": False, "included": [3]},
        None,
    ],
)
def test_selected_items_by_task_id_are_accepted(selected: Any) -> None:
    check_selected_items(selected)


@pytest.mark.parametrize(
    "selected",
    [
        '{"all": true}',  # the JSON-string form: the UI sends an object
        {"all": "yes"},
        {"all": True, "excluded": ["1"]},
        {"all": False, "included": [True]},
        {"all": True, "filters": {}},
        [],
    ],
)
def test_malformed_selected_items_answer_400(selected: Any) -> None:
    with pytest.raises(Denied) as refused:
        check_selected_items(selected)
    assert refused.value.status == 400


def test_a_query_that_is_not_an_object_answers_400() -> None:
    for query in ([], "x", 3, None):
        with pytest.raises(Denied) as refused:
            check_query(query)
        assert refused.value.status == 400


# -- scrub_task ----------------------------------------------------------------------------
ME, MY_EMAIL = 5, "me@lab.example.org"
others = st.integers(1, 40).filter(lambda i: i != ME)
marker = st.uuids().map(lambda u: f"SECRET-{u.hex}")


@st.composite
def someone_elses(draw: st.DrawFn, owner_key: str) -> dict[str, Any]:
    """An annotation or draft of another user, named in any form Label Studio uses."""
    uid = draw(others)
    owner = draw(
        st.sampled_from(
            [uid, str(uid), {"id": uid, "email": f"u{uid}@x.org"}, f"u{uid}@x.org", None, True]
        )
    )
    return {"id": draw(st.integers(1, 10**6)), owner_key: owner, "result": draw(marker)}


@st.composite
def mine(draw: st.DrawFn, owner_key: str) -> dict[str, Any]:
    owner = draw(st.sampled_from([ME, str(ME), {"id": ME}, MY_EMAIL, MY_EMAIL.upper()]))
    return {"id": draw(st.integers(1, 10**6)), owner_key: owner, "result": "mine"}


@st.composite
def tasks(draw: st.DrawFn) -> dict[str, Any]:
    annotations = draw(
        st.lists(st.one_of(someone_elses("completed_by"), mine("completed_by")), max_size=5)
    )
    drafts = draw(st.lists(st.one_of(someone_elses("user"), mine("user")), max_size=4))
    task: dict[str, Any] = {
        "id": draw(st.integers(1, 1000)),
        "data": {"video": "/data/local-files/?d=x.mp4", "video_id": "clip0"},
        "annotations": draw(st.permutations(annotations)),
        "drafts": drafts,
        "predictions": [{"result": draw(marker), "score": 0.9}],
        "updated_at": "2026-01-01T00:00:00Z",
    }
    # counts, annotator lists and summaries of other people's work, each carrying a marker
    for key in draw(
        st.lists(
            st.sampled_from(
                [
                    "total_annotations",
                    "cancelled_annotations",
                    "annotators",
                    "annotations_results",
                    "annotations_ids",
                    "completed_at",
                    "is_labeled",
                    "updated_by",
                    "avg_lead_time",
                    "draft_exists",
                    "reviewers",
                    "comment_authors",
                ]
            ),
            unique=True,
        )
    ):
        task[key] = draw(st.sampled_from([[draw(marker)], draw(marker), {"x": draw(marker)}]))
    return task


@SETTINGS
@given(tasks())
def test_scrub_task_never_leaks_other_peoples_work(task: dict[str, Any]) -> None:
    out = scrub_task(task, ME, MY_EMAIL)
    assert set(out) <= TASK_FIELDS
    assert "SECRET-" not in json.dumps(out)  # no other person's result, count or list
    assert out["predictions"] == []
    # one's own work is all kept, in order
    own = [a["id"] for a in task["annotations"] if a["result"] == "mine"]
    assert [a["id"] for a in out["annotations"]] == own
    assert [d["id"] for d in out["drafts"]] == [
        d["id"] for d in task["drafts"] if d["result"] == "mine"
    ]


@pytest.mark.parametrize("bad", ["x", None, 3, [1, "a", None]])
def test_scrub_task_survives_odd_annotation_lists(bad: Any) -> None:
    out = scrub_task({"id": 1, "annotations": bad, "drafts": bad}, ME, MY_EMAIL)
    assert out == {"id": 1, "annotations": [], "drafts": []}


def test_scrub_task_drops_updated_at_which_others_work_moves() -> None:
    assert "updated_at" not in scrub_task({"id": 1, "updated_at": "t"}, ME)


# -- the route table -------------------------------------------------------------------------
def test_the_route_table_lists_each_view_and_method_once() -> None:
    index = route_index(ROUTES)
    assert ("tasks:api:task-list", "GET") in index
    assert ("tasks:api:task-list", "POST") not in index  # creating tasks: not an annotator's
    assert ("projects:api:project-list", "POST") not in index
    assert ("data_manager:dm-actions", "POST") in index
    twice = (*ROUTES, Route("tasks:api:task-list", frozenset({"GET"}), lambda c: None))
    with pytest.raises(ValueError, match="twice"):
        route_index(twice)
