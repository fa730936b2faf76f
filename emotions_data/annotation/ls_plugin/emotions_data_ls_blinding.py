"""Blinding for the embedded Label Studio: an annotator reaches only their own current tasks.

Label Studio Community has no roles: every logged-in account may list and open every project of
its organization, read any task or annotation by id, and create projects. This middleware runs
after authentication on every request and treats every account that is not a superuser (the
admin our tools use) as an annotator, under a default-deny allowlist:

* pages and assets the labelling UI needs, the user's own whoami/hotkeys;
* the projects that ``access.json`` (``EMOTIONS_DATA_ACCESS_FILE``, written by emotions-data:
  the annotator's group's projects of the current stage) grants to the user: the project, its
  data-manager views and task list, the label stream, its tasks and media resolution;
* in every task answer only the user's own annotations and drafts; counts, annotator lists,
  result summaries and ``updated_at`` are removed; filters and orderings on anything but the
  task id or its data are refused (they would tell other people's labels apart), at every
  depth of ``child_filter``, wherever a selection travels (``query``, body, saved views);
* the user's own annotations and drafts by id; new annotations only in their own name.

What an annotator may call is the table ``ROUTES`` (view name, methods, grant check, answer
rewrite); a (view, method) pair not in it answers 403, so everything else is closed (404 for
ids outside the grant, so ids cannot be probed): other projects, other people's annotations,
project creation, users, organizations, exports, storages, ML, webhooks, tokens. Label
Studio's error answers (5xx) reach an annotator without their text. See docs/blinding.md
for what this hides and what it does not. Inactive accounts cannot log in (Django refuses them).

``POST /emotions-data/accounts`` (superuser only) creates or updates annotator accounts with a
password in one call, which the REST API of Label Studio cannot do.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

ACCESS_ENV = "EMOTIONS_DATA_ACCESS_FILE"
ACCOUNTS_PATH = "/emotions-data/accounts"

#: Static files and pages with no project data (the UI shell, login, the user's own data).
PUBLIC_PREFIXES = (
    "/static/",
    "/react-app/",
    "/dm/",
    "/label-studio-frontend/",
    "/favicon.ico",
    "/sw.js",
    "/sw-fallback.js",
)
PLUMBING = (
    "main",
    "feature_flags",
    "version",
    "api-version",
    "health",
    "user-login",
    "logout",
    "user-account",
    "user-account-anything",
    "current-user-whoami",
    "current-user-hotkeys",
    "product-tour",
    "collect_metrics",
    "projects:project-index",
    "heidi_tips",
)
#: Task fields an annotator gets back; the rest (counts, annotators, results of others) is cut.
#: ``updated_at`` is cut too: Label Studio bumps it whenever anybody saves an annotation or a
#: draft of the task, so it would tell which tasks other people are working on.
TASK_FIELDS = frozenset(
    {
        "id",
        "inner_id",
        "data",
        "project",
        "annotations",
        "drafts",
        "predictions",
        "created_at",
        "queue",
        "overlap",
    }
)

# -- filters -------------------------------------------------------------------------------
# Label Studio 1.23.2 reads a task selection ("prepare params") from a view, or else from the
# ``query`` parameter, or else from the JSON body (data_manager/functions.get_prepare_params):
# ``filters`` {conjunction, items: [Filter]}, ``ordering`` [column], ``selectedItems``, and the
# whole dict again as ``data``, of which it reads ``hiddenColumns`` (columns it computes) and
# ``columnsDisplayType`` (numeric ordering of data fields). A Filter may carry a ``child_filter``,
# itself a Filter (pydantic parses any depth; the ORM applies the first child). A view keeps
# the same under ``data`` (``filters``, ``ordering``) and at the top level (``filter_group``,
# ``ordering``, ``selected_items``). Everything below is checked at every depth, with a closed
# vocabulary: what Label Studio would not parse answers 400 here instead of 500 there.

#: The columns an annotator may filter and order by: the task's own id and its input data.
SAFE_TASK_COLUMNS = frozenset({"id", "inner_id"})
#: A task-data field name: dotted JSON keys, no ``__`` (an ORM lookup, not a key).
_DATA_FIELD = re.compile(r"[A-Za-z0-9_$-]+(?:\.[A-Za-z0-9_$-]+)*")
FILTER_KEYS = frozenset({"filter", "operator", "type", "value", "child_filter"})
#: Label Studio's operators (data_manager/managers.py ``operators``).
OPERATORS = frozenset(
    {
        "equal",
        "not_equal",
        "less",
        "greater",
        "less_or_equal",
        "greater_or_equal",
        "in",
        "not_in",
        "in_list",
        "not_in_list",
        "empty",
        "contains",
        "not_contains",
        "regex",
    }
)
RANGE_OPERATORS = frozenset({"in", "not_in"})
LIST_OPERATORS = frozenset({"in_list", "not_in_list"})
#: The task id and inner id are numbers; a text operator on them is an error in the ORM.
NUMBER_OPERATORS = OPERATORS - {"contains", "not_contains", "regex"}
DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # the one Label Studio's cast_value parses
BOOL_WORDS = frozenset({"true", "yes", "on", "1", "false", "no", "not", "off", "0"})
#: Deeper nesting is refused; Label Studio applies one child level, the UI makes at most one.
MAX_FILTER_DEPTH = 8
MAX_TEXT = 1024  # Label Studio's column, type and operator fields are 1024 characters

Json = Any


class Denied(Exception):
    def __init__(self, status: int = 403, why: str = "not allowed for annotators") -> None:
        super().__init__(why)
        self.status = status
        self.why = why


class Answer(Exception):  # a canned answer, not an error
    """Answer the request with this JSON instead of calling the view."""

    def __init__(self, payload: Json) -> None:
        super().__init__("canned answer")
        self.payload = payload


def _bad(why: str) -> Denied:
    return Denied(400, why)


def _column_rest(name: str, prefix: str) -> str | None:
    return name[len(prefix) :] if name.startswith(prefix) else None


def _safe_rest(rest: str) -> bool:
    if rest in SAFE_TASK_COLUMNS:
        return True
    field = _column_rest(rest, "data.")
    return field is not None and "__" not in field and bool(_DATA_FIELD.fullmatch(field))


def safe_filter_column(name: Json) -> bool:
    """``filter:tasks:id``, ``filter:tasks:inner_id`` or ``filter:tasks:data.<field>``."""
    if not isinstance(name, str):
        return False
    rest = _column_rest(name, "filter:tasks:")
    return rest is not None and _safe_rest(rest)


def safe_ordering_column(name: Json) -> bool:
    """``tasks:id``, ``tasks:inner_id`` or ``tasks:data.<field>``, with an optional ``-``."""
    if not isinstance(name, str):
        return False
    rest = _column_rest(name.removeprefix("-"), "tasks:")
    return rest is not None and _safe_rest(rest)


def _is_number(value: Json) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    if isinstance(value, float | str):
        try:
            return math.isfinite(float(value))
        except ValueError:
            return False
    return False


def _is_datetime(value: Json) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.strptime(value, DATETIME_FORMAT)
    except ValueError:
        return False
    return True


def _is_bool(value: Json) -> bool:
    # Label Studio's cast_bool_from_str: a word, or a value it passes through as it is.
    if isinstance(value, str):
        return value.lower() in BOOL_WORDS
    return isinstance(value, bool | int) or (isinstance(value, float) and math.isfinite(value))


def _is_scalar(value: Json) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, str | int)  # bool is an int


def _check_value(column: str, operator: str, kind: str, value: Json) -> None:
    """The value must be one Label Studio can cast for this operator and type (else: a 500)."""
    numeric = column.removeprefix("filter:tasks:") in SAFE_TASK_COLUMNS
    if numeric and operator not in NUMBER_OPERATORS:
        raise _bad(f"operator {operator!r} does not apply to the number column {column!r}")
    if numeric and kind != "Number":
        raise _bad(f"the column {column!r} is a Number, not {kind!r}")

    def one(v: Json) -> bool:
        if kind == "Number":
            return _is_number(v)
        if kind == "Datetime":
            return _is_datetime(v)
        if kind == "Boolean":
            return _is_bool(v)
        return _is_scalar(v) and not (isinstance(v, str) and len(v) > MAX_TEXT)

    if value is None:
        raise _bad(f"the filter on {column!r} has no value")
    if operator == "empty":
        if not _is_bool(value):
            raise _bad("the 'empty' operator takes true or false")
    elif operator in RANGE_OPERATORS:
        if not (isinstance(value, dict) and set(value) == {"min", "max"}):
            raise _bad(f"operator {operator!r} takes {{'min': ..., 'max': ...}}")
        if not all(one(value[k]) and not isinstance(value[k], bool) for k in ("min", "max")):
            raise _bad(f"the range of the filter on {column!r} is not a {kind} range")
    elif operator in LIST_OPERATORS:
        if not (isinstance(value, list) and len(value) <= 10_000 and all(map(one, value))):
            raise _bad(f"operator {operator!r} takes a list of {kind} values")
    elif operator == "regex":
        if not isinstance(value, str) or len(value) > MAX_TEXT:
            raise _bad("the 'regex' operator takes a text")
        try:
            re.compile(value)
        except re.error:
            raise _bad("the regular expression does not compile") from None
    elif not one(value):
        raise _bad(f"the value of the filter on {column!r} is not a {kind} value")


def _filter_items(items: Json) -> Iterator[tuple[int, Json]]:
    """Every filter item with its depth (1 for the top level), children included."""
    if not isinstance(items, list):
        raise _bad("filters.items must be a list")
    stack = [(1, item) for item in reversed(items)]
    while stack:
        depth, item = stack.pop()
        if depth > MAX_FILTER_DEPTH:
            raise _bad(f"filters nest deeper than {MAX_FILTER_DEPTH} levels")
        yield depth, item
        child = item.get("child_filter") if isinstance(item, dict) else None
        if child is not None:
            stack.append((depth + 1, child))


def _check_filter_item(item: Json) -> None:
    if not isinstance(item, dict):
        raise _bad("a filter must be a JSON object")
    unknown = set(item) - FILTER_KEYS
    if unknown:
        raise _bad(f"unknown filter keys {sorted(unknown)!r}")
    missing = {"filter", "operator", "type", "value"} - set(item)
    if missing:
        raise _bad(f"a filter needs {sorted(missing)!r}")
    column, operator, kind = item["filter"], item["operator"], item["type"]
    for what, text in (("column", column), ("operator", operator), ("type", kind)):
        if not isinstance(text, str) or not text or len(text) > MAX_TEXT:
            raise _bad(f"the filter {what} must be a non-empty text")
    if not safe_filter_column(column):
        # A column of other people's work (results, annotators, counts, times), or one that
        # Label Studio does not know: either way not a selection an annotator may make.
        raise Denied(403, f"annotators may not filter tasks by {column!r}")
    if operator not in OPERATORS:
        raise _bad(f"unknown filter operator {operator!r}")
    if item.get("child_filter") is not None and not isinstance(item["child_filter"], dict):
        raise _bad("child_filter must be a filter or null")
    _check_value(column, operator, kind, item["value"])


def check_filters(filters: Json, ordering: Json, *, empty_ok: bool = False) -> None:
    """Refuse filters and orderings that would select or sort tasks by other people's work.

    Every filter at every depth of ``child_filter`` is checked, and must be well-formed: an
    unknown or malformed structure answers 400, a column outside the allowlist 403. With
    ``empty_ok`` (view data), an empty ``{}``/``None`` stands for "no filters, no ordering", as
    Label Studio reads views; in a query or body it must be absent or complete.
    """
    if filters is not None and not (empty_ok and filters == {}):
        if not isinstance(filters, dict):
            raise _bad("filters must be a JSON object")
        if set(filters) - {"conjunction", "items"}:
            raise _bad(
                f"unknown keys in filters: {sorted(set(filters) - {'conjunction', 'items'})}"
            )
        if filters.get("conjunction") not in ("and", "or"):
            raise _bad("filters.conjunction must be 'and' or 'or'")
        for _depth, item in _filter_items(filters.get("items")):
            _check_filter_item(item)
    if ordering is None or (empty_ok and ordering in ({}, [])):
        return
    if not isinstance(ordering, list):
        raise _bad("ordering must be a list of columns")
    for name in ordering:
        if not isinstance(name, str):
            raise _bad("ordering must be a list of column names")
        if not safe_ordering_column(name):
            raise Denied(403, f"annotators may not order tasks by {name!r}")


def check_selected_items(selected: Json) -> None:
    """Task ids picked by hand: harmless (ids only), but must parse, or Label Studio answers 500.

    ``{"all": true, "excluded": [ids]}`` or ``{"all": false, "included": [ids]}`` selects among
    the tasks of the granted project by id; an annotator sees those ids in the task list anyway.
    The JSON-string form Label Studio also accepts is refused: the UI sends an object.
    """
    if selected is None:
        return
    if not isinstance(selected, dict) or not isinstance(selected.get("all"), bool):
        raise _bad("selectedItems must be {'all': true|false, 'included'|'excluded': [ids]}")
    if set(selected) - {"all", "included", "excluded"}:
        raise _bad("unknown keys in selectedItems")
    for key in ("included", "excluded"):
        ids = selected.get(key, [])
        if not isinstance(ids, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in ids
        ):
            raise _bad(f"selectedItems.{key} must be a list of task ids")


def check_view_columns(data: Json) -> None:
    """``hiddenColumns`` and ``columnsDisplayType``, the parts of view data Label Studio reads.

    Harmless for blinding (the computed columns are cut from every task answer), but a
    malformed value raises in Label Studio's task list (500), so it answers 400 here.
    """
    hidden = data.get("hiddenColumns")
    if hidden is not None and not (
        isinstance(hidden, dict)
        and all(isinstance(hidden.get(k), list) for k in ("explore", "labeling"))
        and all(isinstance(c, str) for k in ("explore", "labeling") for c in hidden[k])
    ):
        raise _bad("hiddenColumns must be {'explore': [columns], 'labeling': [columns]}")
    shown_as = data.get("columnsDisplayType")
    if shown_as is not None and not isinstance(shown_as, dict):
        raise _bad("columnsDisplayType must be a JSON object")


def check_query(query: Json) -> None:
    """A task selection in a ``query`` parameter or a request body (no view)."""
    if not isinstance(query, dict):
        raise _bad("the task query must be a JSON object")
    check_filters(query.get("filters"), query.get("ordering", []))
    check_selected_items(query.get("selectedItems"))
    check_view_columns(query)


def check_view_body(body: Json) -> None:
    """A view created (POST) or changed (PATCH/PUT): every place a filter can be stored."""
    if not isinstance(body, dict):
        raise _bad("a view must be a JSON object")
    if "filter_group" in body:
        # Label Studio's own storage form of a view's filters, which the UI never sends:
        # refused rather than checked in a second vocabulary.
        raise Denied(403, "annotators set view filters under data.filters only")
    data = body.get("data", {})
    if not isinstance(data, dict):
        raise _bad("view data must be a JSON object")
    check_filters(data.get("filters"), data.get("ordering"), empty_ok=True)
    check_view_columns(data)
    # Label Studio replaces the top-level ordering by data.ordering; checked all the same.
    check_filters(body.get("filters"), body.get("ordering"), empty_ok=True)
    check_selected_items(body.get("selected_items") or None)
    check_selected_items(data.get("selectedItems") or None)


# -- answers -------------------------------------------------------------------------------
def _user_id(value: Json) -> int | None:
    if isinstance(value, dict):
        value = value.get("id")
    if isinstance(value, bool):
        return None
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _is_user(value: Json, uid: int, email: str | None) -> bool:
    """``value`` names the user: an id, a user object, or (drafts) the user's e-mail."""
    if _user_id(value) == uid:
        return True
    if not email or not isinstance(value, str):
        return False
    return value.strip().lower() == email.lower()


def scrub_task(task: Json, uid: int, email: str | None = None) -> Json:
    """A task as an annotator may see it: own annotations and drafts only, no counts.

    Label Studio renders a draft's ``user`` as the account's e-mail, an annotation's
    ``completed_by`` as an id or a user object: anything that names nobody or somebody else
    is dropped.
    """
    if not isinstance(task, dict):
        return task
    out = {k: v for k, v in task.items() if k in TASK_FIELDS}
    for key, owner in (("annotations", "completed_by"), ("drafts", "user")):
        if key in out:
            rows = out[key] if isinstance(out[key], list) else []
            out[key] = [
                r for r in rows if isinstance(r, dict) and _is_user(r.get(owner), uid, email)
            ]
    if "predictions" in out:
        out["predictions"] = []
    return out


def _results(payload: Json) -> list[Json] | None:
    if isinstance(payload, list):
        return payload
    if isinstance(payload, dict) and isinstance(payload.get("results"), list):
        return list(payload["results"])
    return None


def _unexpected() -> Denied:
    return Denied(403, "unexpected answer withheld from an annotator")


def _only_projects(payload: Json, granted: frozenset[int]) -> Json:
    rows = _results(payload)
    if rows is None:
        raise _unexpected()
    kept = [r for r in rows if isinstance(r, dict) and _user_id(r.get("id")) in granted]
    if isinstance(payload, dict):
        return {**payload, "results": kept, "count": len(kept), "next": None}
    return kept


def _scrub_task_list(payload: Json, uid: int, email: str | None) -> Json:
    if isinstance(payload, dict) and isinstance(payload.get("tasks"), list):
        out = {k: v for k, v in payload.items() if k in ("total", "tasks")}
        out["tasks"] = [scrub_task(t, uid, email) for t in payload["tasks"]]
        return out
    rows = _results(payload)
    if rows is None:
        raise _unexpected()
    scrubbed = [scrub_task(t, uid, email) for t in rows]
    return {**payload, "results": scrubbed} if isinstance(payload, dict) else scrubbed


def _own(payload: Json, uid: int, field: str, email: str | None = None) -> Json:
    rows = _results(payload)
    if rows is None:
        raise _unexpected()
    kept = [r for r in rows if isinstance(r, dict) and _is_user(r.get(field), uid, email)]
    return {**payload, "results": kept, "count": len(kept)} if isinstance(payload, dict) else kept


# -- the grant file ------------------------------------------------------------------------
class Access:
    """The grant file, re-read when it changes; missing or unreadable grants nothing.

    Each server process (every gunicorn worker) holds its own copy and checks the file's
    mtime and size on every request, so a change reaches all of them without any signal.
    """

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._projects: dict[int, frozenset[int]] = {}

    def projects(self, user_id: int) -> frozenset[int]:
        if not self.path:
            return frozenset()
        try:
            st = os.stat(self.path)
        except OSError:
            self._stamp, self._projects = None, {}
            return frozenset()
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            try:
                with open(self.path, encoding="utf-8") as fh:
                    data = json.load(fh)
                users = data.get("users", {}) if isinstance(data, dict) else {}
                self._projects = {
                    int(uid): frozenset(int(p) for p in entry.get("projects", []))
                    for uid, entry in users.items()
                    if isinstance(entry, dict)
                }
            except (OSError, ValueError, TypeError, AttributeError):
                self._projects = {}
            self._stamp = stamp
        return self._projects.get(int(user_id), frozenset())


# -- the request and its lookups -----------------------------------------------------------
@dataclass(frozen=True)
class Call:
    """One annotator request, as the grant checks and rewrites see it."""

    request: Any
    uid: int
    email: str | None
    granted: frozenset[int]
    kwargs: dict[str, Any]

    @property
    def method(self) -> str:
        return str(self.request.method)

    def project(self, pid: Any) -> int:
        """The project id, if granted to the user (404 otherwise: ids cannot be probed)."""
        if isinstance(pid, bool):
            raise Denied(403, "a project id is required")
        try:
            value = int(pid)
        except (TypeError, ValueError):
            raise Denied(403, "a project id is required") from None
        if value not in self.granted:
            raise Denied(404, "not found")
        return value

    def query_project(self) -> int:
        return self.project(self.request.GET.get("project"))

    def body(self) -> dict[str, Any]:
        if not self.request.body:
            return {}
        try:
            body = json.loads(self.request.body)
        except ValueError:
            raise _bad("a JSON body is required") from None
        if not isinstance(body, dict):
            raise _bad("a JSON object is required")
        return body

    def task(self, pk: Any) -> Any:
        from tasks.models import Task  # type: ignore[import-not-found]

        task = Task.objects.filter(pk=pk).only("id", "project_id").first() if _digits(pk) else None
        if task is None:
            raise Denied(404, "not found")
        self.project(task.project_id)
        return task

    def annotation(self, pk: Any) -> Any:
        from tasks.models import Annotation  # type: ignore[import-not-found]

        ann = (
            Annotation.objects.filter(pk=pk).only("id", "project_id", "completed_by_id").first()
            if _digits(pk)
            else None
        )
        if ann is None or ann.completed_by_id != self.uid:
            raise Denied(404, "not found")
        self.project(ann.project_id)
        return ann

    def draft(self, pk: Any) -> Any:
        from tasks.models import AnnotationDraft  # type: ignore[import-not-found]

        draft = (
            AnnotationDraft.objects.filter(pk=pk).select_related("task").first()
            if _digits(pk)
            else None
        )
        if draft is None or draft.user_id != self.uid:
            raise Denied(404, "not found")
        self.project(draft.task.project_id)
        return draft

    def view(self, pk: Any, pid: int | None = None) -> Any:
        """A data-manager view of a granted project (of ``pid`` when given)."""
        from data_manager.models import View  # type: ignore[import-not-found]

        view = View.objects.filter(pk=pk).first() if _digits(pk) else None
        if view is None or (pid is not None and view.project_id != pid):
            raise Denied(404, "not found")
        self.project(view.project_id)
        return view

    def check_author(self) -> None:
        body = self.body()
        if "completed_by" in body and _user_id(body["completed_by"]) != self.uid:
            raise Denied(403, "annotators may only annotate in their own name")

    def check_selection(self, pid: int) -> None:
        """The task selection of a list or label-stream call: view, ``query`` or body.

        Label Studio takes the first of: a view (``view`` in the URL, else in the body), the
        ``query`` parameter, the body. All three are checked whenever present, whichever wins.
        """
        view_id = self.request.GET.get("view")
        if view_id:
            check_stored_view(self.view(view_id, pid))
        if "query" in self.request.GET:
            from urllib.parse import unquote

            try:
                query = json.loads(unquote(self.request.GET["query"]))
            except ValueError:
                raise _bad("query must be JSON") from None
            check_query(query)
        body = self.body()
        if body:
            check_query(body)
            if body.get("view") not in (None, 0):
                check_stored_view(self.view(body["view"], pid))
        if "ordering" in self.request.GET:
            check_filters(None, self.request.GET.getlist("ordering"))


def _digits(pk: Any) -> bool:
    return not isinstance(pk, bool) and str(pk).isdigit()


def check_stored_view(view: Any) -> None:
    """A saved view as Label Studio will apply it, whoever saved it (the admin too)."""
    try:
        params = view.get_prepare_tasks_params(add_selected_items=True)
    except (ValueError, TypeError, KeyError):  # pydantic's ValidationError is a ValueError
        # what was stored does not parse: Label Studio would answer 500 on it
        raise _bad("the view's filters cannot be read") from None
    filters = params.filters.model_dump(mode="json") if params.filters is not None else None
    check_filters(filters, params.ordering)
    check_view_columns(params.data if isinstance(params.data, dict) else {})
    selected = params.selectedItems
    check_selected_items(selected.model_dump(mode="json") if selected is not None else None)


# -- the routes ----------------------------------------------------------------------------
Grant = Callable[[Call], None]
Rewrite = Callable[[Call, Json], Json]
READ = frozenset({"GET", "HEAD", "OPTIONS"})
ANY = READ | {"POST", "PUT", "PATCH", "DELETE"}


@dataclass(frozen=True)
class Route:
    """What an annotator may do with one Label Studio view: its methods, the check, the answer.

    ``grant`` raises ``Denied`` (or ``Answer``, a canned reply) unless the call is allowed;
    ``rewrite`` (optional) turns the view's JSON answer into what the annotator gets.
    """

    view_name: str
    methods: frozenset[str]
    grant: Grant
    rewrite: Rewrite | None = None


def _nothing(call: Call) -> None:
    """No project data in it (UI shell, login, the user's own account)."""


def _project_of_url(call: Call) -> None:
    call.project(call.kwargs.get("pk"))


def _project_of_query(call: Call) -> None:
    call.query_project()


def _project_of_url_storage(call: Call) -> None:
    call.project(call.kwargs.get("project_id"))


def _no_ml(call: Call) -> None:
    call.query_project()
    raise Answer([])  # no ML backends are shown to annotators


def _no_label_links(call: Call) -> None:
    call.query_project()
    raise Answer([])


def _next_task(call: Call) -> None:
    call.check_selection(call.project(call.kwargs.get("pk")))


def _dm_action(call: Call) -> None:
    pid = call.query_project()
    # The label stream (the next task of the user's queue) is the one action an annotator runs.
    if call.request.GET.get("id") != "next_task":
        raise Denied(403, "not allowed for annotators")
    call.check_selection(pid)


def _view_create(call: Call) -> None:
    body = call.body()
    call.project(body.get("project"))
    check_view_body(body)


def _view_read_or_delete(call: Call) -> None:
    call.view(call.kwargs.get("pk"))


def _view_change(call: Call) -> None:
    call.view(call.kwargs.get("pk"))
    check_view_body(call.body())


def _task_list(call: Call) -> None:
    call.check_selection(call.query_project())


def _task_of_url(call: Call) -> None:
    call.task(call.kwargs.get("pk"))


def _annotate(call: Call) -> None:
    call.task(call.kwargs.get("pk"))
    call.check_author()


def _task_and_own_annotation(call: Call) -> None:
    call.task(call.kwargs.get("pk"))
    call.annotation(call.kwargs.get("annotation_id"))


def _own_annotation(call: Call) -> None:
    call.annotation(call.kwargs.get("pk"))


def _change_own_annotation(call: Call) -> None:
    call.annotation(call.kwargs.get("pk"))
    call.check_author()


def _own_draft(call: Call) -> None:
    call.draft(call.kwargs.get("pk"))


def _task_of_storage_url(call: Call) -> None:
    call.task(call.kwargs.get("task_id"))


def _scrub_one(call: Call, task: Json) -> Json:
    return scrub_task(task, call.uid, call.email)


def _scrub_list(call: Call, payload: Json) -> Json:
    return _scrub_task_list(payload, call.uid, call.email)


def _own_users(call: Call, payload: Json) -> Json:
    # The labelling UI lists the project's users (avatars); an annotator sees only itself.
    return _own(payload, call.uid, "id")


def _granted_projects(call: Call, payload: Json) -> Json:
    return _only_projects(payload, call.granted)


def _own_annotations(call: Call, payload: Json) -> Json:
    return _own(payload, call.uid, "completed_by")


def _own_drafts(call: Call, payload: Json) -> Json:
    return _own(payload, call.uid, "user", call.email)


#: Every Label Studio view an annotator may call, and how. A (view, method) pair that is not
#: here answers 403: a new Label Studio endpoint is closed until it is added on purpose.
ROUTES: tuple[Route, ...] = (
    *(Route(name, ANY, _nothing) for name in PLUMBING),
    Route("user-list", READ, _nothing, _own_users),
    Route("ml:api:ml-list", READ, _no_ml),
    Route("labels_manager:api-labels:label_link-list", READ, _no_label_links),
    Route("projects:api:project-list", READ, _nothing, _granted_projects),
    Route("projects:api:project-counts-list", READ, _nothing, _granted_projects),
    Route("projects:api:project-detail", READ, _project_of_url),
    Route("data_manager:project-data", READ, _project_of_url),
    Route("projects:api:label-stream-history", READ, _project_of_url),
    Route("projects:api:project-next", READ, _next_task, _scrub_one),
    Route("data_manager:dm-project", READ, _project_of_query),
    Route("data_manager:dm-columns", READ, _project_of_query),
    Route("data_manager:dm-actions", READ, _project_of_query),
    Route("data_manager:dm-actions", frozenset({"POST"}), _dm_action, _scrub_one),
    Route("data_manager:api:view-list", READ, _project_of_query),
    Route("data_manager:api:view-list", frozenset({"POST"}), _view_create),
    Route("data_manager:api:view-detail", READ | {"DELETE"}, _view_read_or_delete),
    Route("data_manager:api:view-detail", frozenset({"PATCH", "PUT"}), _view_change),
    Route("tasks:api:task-list", READ, _task_list, _scrub_list),
    Route("tasks:api:task-detail", READ, _task_of_url, _scrub_one),
    Route("tasks:api:task-annotations", READ, _task_of_url, _own_annotations),
    Route("tasks:api:task-annotations", frozenset({"POST"}), _annotate),
    Route("tasks:api:task-drafts", READ, _task_of_url, _own_drafts),
    Route("tasks:api:task-drafts", frozenset({"POST"}), _task_of_url),
    Route("tasks:api:task-annotations-drafts", READ, _task_and_own_annotation, _own_drafts),
    Route("tasks:api:task-annotations-drafts", frozenset({"POST"}), _task_and_own_annotation),
    Route("tasks:api-annotations:annotation-detail", READ | {"DELETE"}, _own_annotation),
    Route(
        "tasks:api-annotations:annotation-detail",
        frozenset({"PATCH", "PUT"}),
        _change_own_annotation,
    ),
    Route("tasks:api-drafts:draft-detail", ANY - {"POST"}, _own_draft),
    Route("storages:task-storage-data-resolve", READ, _task_of_storage_url),
    Route("storages:task-storage-data-presign", READ, _task_of_storage_url),
    Route("storages:project-storage-data-resolve", READ, _project_of_url_storage),
    Route("storages:project-storage-data-presign", READ, _project_of_url_storage),
    # The media file itself (not a judgement); see docs/blinding.md for what this allows.
    Route("storages:localfiles_data", READ, _nothing),
)


def route_index(routes: tuple[Route, ...]) -> dict[tuple[str, str], Route]:
    """``(view name, method) -> Route``; a pair listed twice is a mistake in the table."""
    index: dict[tuple[str, str], Route] = {}
    for route in routes:
        for method in route.methods:
            key = (route.view_name, method)
            if key in index:
                raise ValueError(f"route {key} is listed twice")
            index[key] = route
    return index


ROUTE_INDEX = route_index(ROUTES)


class BlindingMiddleware:
    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        self.access = Access(os.environ.get(ACCESS_ENV))

    # -- who -------------------------------------------------------------------------------
    @staticmethod
    def _user(request: Any) -> Any:
        """The user the views will see: session/JWT (set by earlier middleware) or API token."""
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            return user
        if not (request.META.get("HTTP_AUTHORIZATION") or request.META.get("HTTP_X_API_KEY")):
            return None
        from rest_framework.exceptions import APIException  # type: ignore[import-not-found]
        from rest_framework.request import Request  # type: ignore[import-not-found]
        from rest_framework.settings import api_settings  # type: ignore[import-not-found]

        try:
            drf = Request(
                request, authenticators=[a() for a in api_settings.DEFAULT_AUTHENTICATION_CLASSES]
            )
            user = drf.user
        except APIException:  # AuthenticationFailed, NotAuthenticated, a CSRF PermissionDenied
            return None  # the view authenticates the same way and refuses too
        return user if user is not None and user.is_authenticated else None

    def __call__(self, request: Any) -> Any:
        if request.path == ACCOUNTS_PATH:
            return self._accounts(request)
        if request.path.startswith(PUBLIC_PREFIXES):
            return self.get_response(request)
        user = self._user(request)
        if user is None or user.is_superuser:
            return self.get_response(request)
        try:
            call, route = self._route(request, user)
            route.grant(call)
            response = self.get_response(request)
            if response.status_code >= 500:
                # Label Studio's error answer carries the exception's text (ORM messages,
                # values): an annotator gets the status only.
                return self._deny(request, Denied(response.status_code, "server error"))
            if route.rewrite is not None and 200 <= response.status_code < 300:
                rewrite = route.rewrite
                response = self._rewrite(response, lambda p: rewrite(call, p))
            return response
        except Denied as exc:
            return self._deny(request, exc)
        except Answer as canned:
            from django.http import JsonResponse  # type: ignore[import-not-found]

            return JsonResponse(canned.payload, safe=False)

    def _route(self, request: Any, user: Any) -> tuple[Call, Route]:
        """The route of the request; ``Denied`` when the (view, method) pair is not listed."""
        from django.urls import Resolver404, resolve  # type: ignore[import-not-found]

        try:
            match = resolve(request.path_info)
        except Resolver404:
            raise Denied(404, "not found") from None
        route = ROUTE_INDEX.get((match.view_name, str(request.method)))
        if route is None:
            raise Denied(403, "not allowed for annotators")
        uid = int(user.id)
        email = getattr(user, "email", None)
        call = Call(request, uid, email or None, self.access.projects(uid), dict(match.kwargs))
        return call, route

    @staticmethod
    def _deny(request: Any, exc: Denied) -> Any:
        from django.http import HttpResponse, JsonResponse  # type: ignore[import-not-found]

        if request.path.startswith("/api/"):
            return JsonResponse({"detail": exc.why}, status=exc.status)
        return HttpResponse(exc.why, status=exc.status, content_type="text/plain")

    @staticmethod
    def _rewrite(response: Any, post: Callable[[Json], Json]) -> Any:
        try:
            payload = json.loads(response.content)
        except (ValueError, AttributeError):
            raise _unexpected() from None
        response.content = json.dumps(post(payload)).encode()
        if response.has_header("Content-Length"):
            response["Content-Length"] = str(len(response.content))
        return response

    # -- accounts (superuser only) ---------------------------------------------------------
    def _accounts(self, request: Any) -> Any:
        from django.db import transaction  # type: ignore[import-not-found]
        from django.http import JsonResponse  # type: ignore[import-not-found]
        from rest_framework.authtoken.models import Token  # type: ignore[import-not-found]
        from users.models import User  # type: ignore[import-not-found]

        # The admin's API token only: a browser session could be driven by another site (CSRF).
        header = str(request.META.get("HTTP_AUTHORIZATION", ""))
        key = header[len("Token ") :].strip() if header.startswith("Token ") else ""
        found = Token.objects.filter(key=key).select_related("user").first() if key else None
        admin = found.user if found is not None else None
        if admin is None or not admin.is_superuser or not admin.is_active:
            return JsonResponse({"detail": "superuser only"}, status=403)
        if request.method != "POST":
            return JsonResponse({"detail": "POST only"}, status=405)
        try:
            accounts = json.loads(request.body).get("accounts", [])
        except (ValueError, AttributeError):
            return JsonResponse({"detail": "a JSON body with 'accounts' is required"}, status=400)
        org = admin.active_organization
        out: dict[str, dict[str, Any]] = {}
        for entry in accounts:
            email = str(entry["email"]).strip()
            with transaction.atomic():
                user = User.objects.filter(email__iexact=email).first()
                created = user is None
                if user is None:
                    user = User.objects.create_user(email=email, password=None)
                if entry.get("username"):
                    user.username = str(entry["username"])
                if entry.get("first_name"):
                    user.first_name = str(entry["first_name"])
                if entry.get("password") and (created or entry.get("reset")):
                    user.set_password(str(entry["password"]))
                user.is_active = bool(entry.get("active", True))
                # Repairs a half-made account too: it must belong to the organization.
                org.add_user(user)
                user.active_organization = org
                user.save()
            out[email] = {"id": user.id, "created": created, "active": user.is_active}
        return JsonResponse({"users": out})
