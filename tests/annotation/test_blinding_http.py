"""Blinding against filters, over HTTP, as an annotator of group A with a session login.

Issue 22 item 5: a data-manager filter whose top level is harmless (``filter:tasks:id > 0``) and
whose ``child_filter`` selects by other people's labels or accounts was accepted and applied.
Each form a task selection can travel in is tried here as annotator a1, who has judged nothing,
while a2 (same group) has labelled one task "fear" and the other "neutral". The admin (not
blinded) runs the same selections first, to show each one really would tell the labels apart.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from emotions_data.annotation.client import Client
from emotions_data.annotation.server import Server, server_status, stop_server
from emotions_data.cli import main
from tests.annotation.people_helpers import PeopleRoot, Session, make_people_root

pytestmark = [pytest.mark.labelstudio, pytest.mark.slow, pytest.mark.ffmpeg]


@pytest.fixture(scope="module")
def people(tmp_path_factory: pytest.TempPathFactory, ls_server: Server) -> Iterator[PeopleRoot]:
    root = tmp_path_factory.mktemp("blinding")
    r = CliRunner().invoke(main, ["annotate", "server", "start", "--root", str(root)])
    assert r.exit_code == 0, r.output
    server = server_status(root)
    assert server is not None
    try:
        yield make_people_root(root, server)
    finally:
        stop_server(root)


@pytest.fixture(scope="module")
def accounts(people: PeopleRoot) -> dict[str, dict[str, str]]:
    r = CliRunner().invoke(
        main,
        [
            "annotate",
            "users",
            "--root",
            str(people.root),
            "--groups",
            str(people.groups_path),
            "--protocol",
            str(people.protocol_path),
        ],
    )
    assert r.exit_code == 0, r.output
    return people.credentials()


@pytest.fixture(scope="module")
def judged(people: PeopleRoot, accounts: dict[str, dict[str, str]]) -> dict[str, Any]:
    """a2 labels group A's first task "fear" and its second "neutral" (the admin, in a2's name)."""
    state = people.state()
    client = Client(people.server)
    fear, neutral = sorted(state.tasks["primary/A"].values())
    a2 = state.users["a2"]
    client.annotate(fear, "fear", a2, 3.0, "emotion", "video")
    client.annotate(neutral, "neutral", a2, 3.0, "emotion", "video")
    return {"project": state.projects["primary/A"], "fear": fear, "neutral": neutral, "a2": a2}


@pytest.fixture()
def a1(people: PeopleRoot, accounts: dict[str, dict[str, str]]) -> Iterator[Session]:
    session = Session(people.server.url)
    assert session.login(accounts["a1"]["email"], accounts["a1"]["password"])
    try:
        yield session
    finally:
        session.close()


@pytest.fixture()
def admin(people: PeopleRoot) -> Iterator[httpx.Client]:
    http = httpx.Client(
        base_url=people.server.url,
        headers={"Authorization": f"Token {people.server.token}"},
        timeout=30.0,
    )
    try:
        yield http
    finally:
        http.close()


def item(column: str, operator: str, kind: str, value: Any, child: Any = None) -> dict[str, Any]:
    out = {"filter": column, "operator": operator, "type": kind, "value": value}
    if child is not None:
        out["child_filter"] = child
    return out


def any_task(child: Any = None) -> dict[str, Any]:
    """``tasks:id > 0``: every task, the harmless parent of the reported filter."""
    return item("filter:tasks:id", "greater", "Number", 0, child)


LABELLED_FEAR = item("filter:tasks:annotations_results", "contains", "String", "fear")


def judged_by(uid: int) -> dict[str, Any]:
    return item("filter:tasks:annotators", "contains", "List", uid)


def filters(*items: dict[str, Any]) -> dict[str, Any]:
    return {"conjunction": "and", "items": list(items)}


def as_query(*items: dict[str, Any]) -> str:
    return json.dumps({"filters": filters(*items), "ordering": []})


def depth3(leaf: dict[str, Any]) -> dict[str, Any]:
    """``leaf`` as the child of a child of ``tasks:id > 0``."""
    return any_task(any_task(leaf))


def task_ids(answer: httpx.Response) -> list[int]:
    assert answer.status_code == 200, answer.text
    return sorted(t["id"] for t in answer.json()["tasks"])


def refused(answer: httpx.Response) -> bool:
    """Refused by the blinding: 400 or 403, a JSON reason, and never a server error."""
    return answer.status_code in (400, 403) and "detail" in answer.json()


def test_the_reported_child_filter_really_selects_by_label(
    admin: httpx.Client, judged: dict[str, Any]
) -> None:
    # The premise: unblinded, the child is applied and picks out the task a2 labelled "fear".
    pid = judged["project"]
    got = admin.get(
        "/api/tasks/", params={"project": pid, "query": as_query(any_task(LABELLED_FEAR))}
    )
    assert task_ids(got) == [judged["fear"]]
    by_a2 = admin.get(
        "/api/tasks/", params={"project": pid, "query": as_query(any_task(judged_by(judged["a2"])))}
    )
    assert task_ids(by_a2) == sorted([judged["fear"], judged["neutral"]])


@pytest.mark.parametrize(
    "selection",
    [any_task(LABELLED_FEAR), depth3(LABELLED_FEAR), any_task(judged_by(1)), depth3(judged_by(1))],
    ids=["labels-depth1", "labels-depth3", "annotators-depth1", "annotators-depth3"],
)
def test_child_filters_in_the_task_list_query_are_refused(
    a1: Session, judged: dict[str, Any], selection: dict[str, Any]
) -> None:
    answer = a1.get("/api/tasks/", project=judged["project"], query=as_query(selection))
    assert refused(answer), answer.text
    assert answer.status_code == 403


@pytest.mark.parametrize("selection", [any_task(LABELLED_FEAR), depth3(judged_by(1))])
def test_child_filters_in_the_label_stream_body_are_refused(
    a1: Session, judged: dict[str, Any], selection: dict[str, Any]
) -> None:
    pid = judged["project"]
    answer = a1.post(
        f"/api/dm/actions/?id=next_task&project={pid}", {"filters": filters(selection)}
    )
    assert refused(answer), answer.text
    # the same selection in the body of the other label-stream entry (a GET with a body)
    other = a1.http.request(
        "GET",
        f"/api/projects/{pid}/next",
        content=json.dumps({"filters": filters(selection)}),
        headers={"Content-Type": "application/json"},
    )
    assert refused(other), other.text


def test_views_with_child_filters_cannot_be_created_or_changed(
    a1: Session, judged: dict[str, Any]
) -> None:
    pid = judged["project"]
    for selection in (any_task(LABELLED_FEAR), depth3(judged_by(judged["a2"]))):
        made = a1.post("/api/dm/views/", {"project": pid, "data": {"filters": filters(selection)}})
        assert refused(made), made.text
    safe = a1.post(
        "/api/dm/views/", {"project": pid, "data": {"filters": filters(any_task(any_task()))}}
    )
    assert safe.status_code == 201, safe.text
    view = safe.json()["id"]
    try:
        for selection in (any_task(LABELLED_FEAR), depth3(LABELLED_FEAR)):
            changed = a1.patch(
                f"/api/dm/views/{view}/", {"project": pid, "data": {"filters": filters(selection)}}
            )
            assert refused(changed), changed.text
        # Label Studio's own storage form of the filters is refused outright
        stored_form = a1.patch(
            f"/api/dm/views/{view}/",
            {"filter_group": {"conjunction": "and", "filters": [{"column": "x"}]}},
        )
        assert stored_form.status_code == 403
        # nothing of the refused changes was stored
        kept = a1.get(f"/api/dm/views/{view}/").json()["data"]["filters"]
        assert json.dumps(kept).count("annotations_results") == 0
        assert kept["items"][0]["child_filter"]["filter"] == "filter:tasks:id"
    finally:
        assert a1.http.delete(f"/api/dm/views/{view}/", headers=a1._headers()).status_code == 204


@pytest.fixture()
def admins_view(admin: httpx.Client, judged: dict[str, Any]) -> Iterator[int]:
    """A view of group A's project that selects by a2's labels, saved by the admin."""
    made = admin.post(
        "/api/dm/views/",
        json={"project": judged["project"], "data": {"filters": filters(any_task(LABELLED_FEAR))}},
    )
    assert made.status_code == 201, made.text
    view = int(made.json()["id"])
    # the premise: Label Studio applies the stored child to whoever uses the view
    assert task_ids(admin.get("/api/tasks/", params={"view": view})) == [judged["fear"]]
    try:
        yield view
    finally:
        admin.delete(f"/api/dm/views/{view}/")


def test_a_stored_view_with_a_forbidden_child_cannot_be_used(
    a1: Session, judged: dict[str, Any], admins_view: int
) -> None:
    pid = judged["project"]
    listed = a1.get("/api/tasks/", project=pid, view=admins_view)
    assert refused(listed), listed.text
    stream = a1.post(f"/api/dm/actions/?id=next_task&project={pid}", {"view": admins_view})
    assert refused(stream), stream.text
    stream_by_url = a1.post(f"/api/dm/actions/?id=next_task&project={pid}&view={admins_view}", {})
    assert refused(stream_by_url), stream_by_url.text
    next_by_url = a1.get(f"/api/projects/{pid}/next", view=admins_view)
    assert refused(next_by_url), next_by_url.text


@pytest.mark.parametrize(
    "child",
    [
        item("filter:tasks:no_such_column", "equal", "String", "x"),
        item("filter:tasks:annotations__result", "contains", "String", "fear"),
        item("filter:tasks:id", "greater", "Number", "not a number"),
        item("filter:tasks:id", "bogus", "Number", 1),
        {"filter": "filter:tasks:id"},
        "not a filter",
    ],
    ids=["unknown", "traversal", "bad-number", "bad-operator", "incomplete", "not-an-object"],
)
def test_unknown_or_malformed_children_answer_400_or_403_never_500(
    a1: Session, admin: httpx.Client, judged: dict[str, Any], child: Any
) -> None:
    pid = judged["project"]
    query = json.dumps({"filters": {"conjunction": "and", "items": [any_task(child)]}})
    answer = a1.get("/api/tasks/", project=pid, query=query)
    assert refused(answer), answer.text
    body = a1.post(
        f"/api/dm/actions/?id=next_task&project={pid}",
        {"filters": {"conjunction": "and", "items": [any_task(child)]}},
    )
    assert refused(body), body.text
    view = a1.post(
        "/api/dm/views/",
        {"project": pid, "data": {"filters": {"conjunction": "and", "items": [any_task(child)]}}},
    )
    assert refused(view), view.text


def test_a_broken_view_saved_by_the_admin_answers_400_to_an_annotator(
    a1: Session, admin: httpx.Client, judged: dict[str, Any]
) -> None:
    pid = judged["project"]
    # hiddenColumns without its 'labeling' list: Label Studio's task list raises on it
    made = admin.post(
        "/api/dm/views/", json={"project": pid, "data": {"hiddenColumns": {"explore": []}}}
    )
    assert made.status_code == 201, made.text
    view = made.json()["id"]
    try:
        assert admin.get("/api/tasks/", params={"project": pid, "view": view}).status_code >= 500
        answer = a1.get("/api/tasks/", project=pid, view=view)
        assert answer.status_code == 400, answer.text
    finally:
        admin.delete(f"/api/dm/views/{view}/")


def test_the_allowed_forms_still_work(a1: Session, judged: dict[str, Any]) -> None:
    pid, fear, neutral = judged["project"], judged["fear"], judged["neutral"]
    by_id = a1.get(
        "/api/tasks/", project=pid, query=as_query(item("filter:tasks:id", "equal", "Number", fear))
    )
    assert task_ids(by_id) == [fear]
    child_on_id = any_task(item("filter:tasks:id", "equal", "Number", neutral))
    assert task_ids(a1.get("/api/tasks/", project=pid, query=as_query(child_on_id))) == [neutral]
    # Accepted at depth 3 too; Label Studio applies only the first child level, so the result
    # is not narrowed by the deepest one (hence no exact list here).
    deep_on_id = depth3(item("filter:tasks:id", "less", "Number", neutral))
    deep = task_ids(a1.get("/api/tasks/", project=pid, query=as_query(deep_on_id)))
    assert fear in deep and set(deep) <= {fear, neutral}
    video_id = a1.get(f"/api/tasks/{fear}/").json()["data"]["video_id"]
    by_data = as_query(item("filter:tasks:data.video_id", "equal", "String", video_id))
    assert task_ids(a1.get("/api/tasks/", project=pid, query=by_data)) == [fear]
    ordered = json.dumps({"ordering": ["-tasks:id"]})
    answer = a1.get("/api/tasks/", project=pid, query=ordered)
    assert [t["id"] for t in answer.json()["tasks"]] == [neutral, fear]
    # a view with a safe child, then used by the task list and the label stream
    made = a1.post("/api/dm/views/", {"project": pid, "data": {"filters": filters(child_on_id)}})
    assert made.status_code == 201, made.text
    view = made.json()["id"]
    try:
        assert task_ids(a1.get("/api/tasks/", project=pid, view=view)) == [neutral]
        stream = a1.post(f"/api/dm/actions/?id=next_task&project={pid}", {"view": view})
        assert stream.status_code == 200, stream.text
        assert stream.json()["id"] == neutral
        assert stream.json()["annotations"] == []  # a2's "neutral" is not shown
    finally:
        a1.http.delete(f"/api/dm/views/{view}/", headers=a1._headers())
    # nothing in the answers tells what a2 did, nor when
    dumped = json.dumps(a1.get("/api/tasks/", project=pid).json())
    assert "fear" not in dumped and "neutral" not in dumped and "updated_at" not in dumped


def test_own_drafts_are_shown_and_other_peoples_are_not(
    people: PeopleRoot, accounts: dict[str, dict[str, str]], a1: Session, judged: dict[str, Any]
) -> None:
    task = judged["fear"]
    result = [
        {
            "from_name": "emotion",
            "to_name": "video",
            "type": "choices",
            "value": {"choices": ["sadness"]},
        }
    ]
    a2 = Session(people.server.url)
    assert a2.login(accounts["a2"]["email"], accounts["a2"]["password"])
    try:
        theirs = a2.post(f"/api/tasks/{task}/drafts", {"result": result, "lead_time": 1.0})
        assert theirs.status_code == 201, theirs.text
    finally:
        a2.close()
    mine = a1.post(f"/api/tasks/{task}/drafts", {"result": result, "lead_time": 1.0})
    assert mine.status_code == 201, mine.text
    # Label Studio names a draft's user by e-mail; the scrub must still recognise one's own
    seen = a1.get(f"/api/tasks/{task}/").json()["drafts"]
    assert [d["id"] for d in seen] == [mine.json()["id"]]
    listed = a1.get(f"/api/tasks/{task}/drafts").json()
    assert [d["id"] for d in listed] == [mine.json()["id"]]
    assert a1.get(f"/api/drafts/{theirs.json()['id']}/").status_code == 404


def test_endpoints_outside_the_route_table_are_refused(a1: Session, judged: dict[str, Any]) -> None:
    pid, task = judged["project"], judged["fear"]
    # present in Label Studio 1.23.2, absent from the table: closed by construction
    assert a1.get(f"/api/tasks/{task}/agreement/").status_code == 403
    assert a1.post("/api/dm/views/order/", {"project": pid, "ids": []}).status_code == 403
    assert a1.post(f"/api/dm/actions/?id=delete_tasks&project={pid}", {}).status_code == 403
    assert a1.http.delete(f"/api/tasks/{task}/", headers=a1._headers()).status_code == 403
    assert a1.post("/api/tasks/", {"project": pid, "data": {}}).status_code == 403
