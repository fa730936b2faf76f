"""Blinding for the embedded Label Studio: an annotator reaches only their own current tasks.

Label Studio Community has no roles: every logged-in account may list and open every project of
its organization, read any task or annotation by id, and create projects. This middleware runs
after authentication on every request and treats every account that is not a superuser (the
admin our tools use) as an annotator, under a default-deny allowlist:

* pages and assets the labelling UI needs, the user's own whoami/hotkeys;
* the projects that ``access.json`` (``EMOTIONS_DATA_ACCESS_FILE``, written by emotions-data:
  the annotator's group's projects of the current stage) grants to the user: the project, its
  data-manager views and task list, the label stream, its tasks and media resolution;
* in every task answer only the user's own annotations and drafts; counts, annotator lists and
  result summaries of other people are removed; filters and orderings on anything but the task
  id or its data are refused (they would tell other people's labels apart);
* the user's own annotations and drafts by id; new annotations only in their own name.

Everything else answers 403 (404 for ids outside the grant, so ids cannot be probed): other
projects, other people's annotations, project creation, users, organizations, exports,
storages, ML, webhooks, tokens. Inactive accounts cannot log in (Django refuses them).

``POST /emotions-data/accounts`` (superuser only) creates or updates annotator accounts with a
password in one call, which the REST API of Label Studio cannot do.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
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
PLUMBING = {
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
}
#: Task fields an annotator gets back; the rest (counts, annotators, results of others) is cut.
TASK_FIELDS = {
    "id",
    "inner_id",
    "data",
    "project",
    "annotations",
    "drafts",
    "predictions",
    "created_at",
    "updated_at",
    "queue",
    "overlap",
}
#: Columns an annotator may filter or order the task list by.
SAFE_COLUMNS = ("tasks:id", "tasks:inner_id", "tasks:data.")

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


class Access:
    """The grant file, re-read when it changes; missing or unreadable grants nothing."""

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


def _user_id(value: Json) -> int | None:
    if isinstance(value, dict):
        value = value.get("id")
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def scrub_task(task: Json, uid: int) -> Json:
    if not isinstance(task, dict):
        return task
    out = {k: v for k, v in task.items() if k in TASK_FIELDS}
    if isinstance(out.get("annotations"), list):
        out["annotations"] = [
            a for a in out["annotations"] if _user_id(a.get("completed_by")) == uid
        ]
    if isinstance(out.get("drafts"), list):
        out["drafts"] = [d for d in out["drafts"] if _user_id(d.get("user")) in (uid, None)]
    if "predictions" in out:
        out["predictions"] = []
    return out


def _results(payload: Json) -> list[Json] | None:
    if isinstance(payload, list):
        return payload
    if isinstance(payload, dict) and isinstance(payload.get("results"), list):
        return list(payload["results"])
    return None


def _safe_column(name: str, prefix: str = "") -> bool:
    name = name.lstrip("-")
    if prefix and name.startswith(prefix):
        name = name[len(prefix) :]
    return any(name == c or (c.endswith(".") and name.startswith(c)) for c in SAFE_COLUMNS)


def check_filters(filters: Json, ordering: Json) -> None:
    """Refuse filters and orderings that would sort or select tasks by other people's work."""
    items = filters.get("items", []) if isinstance(filters, dict) else []
    for item in items or []:
        name = item.get("filter", "") if isinstance(item, dict) else ""
        if not _safe_column(str(name), "filter:"):
            raise Denied(403, f"annotators may not filter tasks by {name!r}")
    for name in ordering or []:
        if not _safe_column(str(name)):
            raise Denied(403, f"annotators may not order tasks by {name!r}")


def _as_dict(model: Any) -> Json:
    if model is None:
        return None
    dump = getattr(model, "model_dump", None) or getattr(model, "dict", None)
    return dump() if dump else model


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
        from rest_framework.request import Request  # type: ignore[import-not-found]
        from rest_framework.settings import api_settings  # type: ignore[import-not-found]

        try:
            drf = Request(
                request, authenticators=[a() for a in api_settings.DEFAULT_AUTHENTICATION_CLASSES]
            )
            user = drf.user
        except Exception:
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
            post = self._check(request, int(user.id))
            response = self.get_response(request)
            if post is not None and 200 <= response.status_code < 300:
                response = self._rewrite(response, post)
            return response
        except Denied as exc:
            return self._deny(request, exc)
        except Answer as canned:
            from django.http import JsonResponse  # type: ignore[import-not-found]

            return JsonResponse(canned.payload, safe=False)

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
            raise Denied(403, "unexpected answer withheld from an annotator") from None
        response.content = json.dumps(post(payload)).encode()
        if response.has_header("Content-Length"):
            response["Content-Length"] = str(len(response.content))
        return response

    # -- what ------------------------------------------------------------------------------
    def _check(self, request: Any, uid: int) -> Callable[[Json], Json] | None:
        """Raise ``Denied`` unless allowed; return a rewrite of the JSON answer when needed."""
        from django.urls import Resolver404, resolve  # type: ignore[import-not-found]

        try:
            match = resolve(request.path_info)
        except Resolver404:
            raise Denied(404, "not found") from None
        name = match.view_name
        kw = match.kwargs
        method = request.method
        read = method in ("GET", "HEAD", "OPTIONS")
        granted = self.access.projects(uid)

        def project(pid: Any) -> int:
            try:
                value = int(pid)
            except (TypeError, ValueError):
                raise Denied(403, "a project id is required") from None
            if value not in granted:
                raise Denied(404, "not found")
            return value

        if name in PLUMBING:
            return None
        if name == "user-list" and read:
            # The labelling UI lists the project's users (avatars); an annotator sees only itself.
            return lambda p: self._own(p, uid, "id")
        if name == "ml:api:ml-list" and read:
            project(request.GET.get("project"))
            raise Answer([])  # no ML backends are shown to annotators
        if name == "projects:api:project-list" and read:
            return lambda p: self._only_projects(p, granted)
        if name == "projects:api:project-counts-list" and read:
            return lambda p: self._only_projects(p, granted)
        if name in ("projects:api:project-detail", "data_manager:project-data") and read:
            project(kw.get("pk"))
            return None
        if name == "projects:api:label-stream-history" and read:
            project(kw.get("pk"))
            return None
        if name == "projects:api:project-next" and read:
            project(kw.get("pk"))
            self._check_query(request, int(kw["pk"]))
            return lambda t: scrub_task(t, uid)
        if name in ("data_manager:dm-project", "data_manager:dm-columns") and read:
            project(request.GET.get("project"))
            return None
        if name == "data_manager:dm-actions":
            pid = project(request.GET.get("project"))
            if read:
                return None
            if method == "POST" and request.GET.get("id") == "next_task":
                # The label stream: the next task of the user's queue, as an action.
                self._check_query(request, pid)
                return lambda t: scrub_task(t, uid)
        if name in ("labels_manager:api-labels:label_link-list",) and read:
            project(request.GET.get("project"))
            raise Answer([])
        if name == "data_manager:api:view-list":
            if read:
                project(request.GET.get("project"))
                return None
            if method == "POST":
                body = self._body(request)
                project(body.get("project"))
                self._check_view_data(body)
                return None
        if name == "data_manager:api:view-detail":
            view = self._view(kw.get("pk"))
            project(view.project_id)
            if method in ("PATCH", "PUT"):
                self._check_view_data(self._body(request))
            elif not read and method != "DELETE":
                raise Denied()
            return None
        if name == "tasks:api:task-list" and read:
            pid = project(request.GET.get("project"))
            self._check_query(request, pid)
            return lambda p: self._scrub_task_list(p, uid)
        if name in ("tasks:api:task-detail",) and read:
            self._task(kw.get("pk"), project)
            return lambda t: scrub_task(t, uid)
        if name == "tasks:api:task-annotations":
            self._task(kw.get("pk"), project)
            if read:
                return lambda p: self._own(p, uid, "completed_by")
            if method == "POST":
                self._check_author(request, uid)
                return None
        if name == "tasks:api:task-drafts":
            self._task(kw.get("pk"), project)
            if read:
                return lambda p: self._own(p, uid, "user")
            if method == "POST":
                return None
        if name == "tasks:api:task-annotations-drafts":
            self._task(kw.get("pk"), project)
            self._annotation(kw.get("annotation_id"), uid, project)
            return None if method in ("POST",) else (lambda p: self._own(p, uid, "user"))
        if name == "tasks:api-annotations:annotation-detail":
            self._annotation(kw.get("pk"), uid, project)
            if method in ("PATCH", "PUT"):
                self._check_author(request, uid)
            return None
        if name == "tasks:api-drafts:draft-detail":
            self._draft(kw.get("pk"), uid, project)
            return None
        if name in ("storages:task-storage-data-resolve", "storages:task-storage-data-presign"):
            self._task(kw.get("task_id"), project)
            return None
        if name in (
            "storages:project-storage-data-resolve",
            "storages:project-storage-data-presign",
        ):
            project(kw.get("project_id"))
            return None
        if name == "storages:localfiles_data" and read:
            # The media file itself (not a judgement); see the README for what this allows.
            return None
        raise Denied(403, "not allowed for annotators")

    # -- helpers ---------------------------------------------------------------------------
    @staticmethod
    def _body(request: Any) -> dict[str, Any]:
        if not request.body:
            return {}
        try:
            body = json.loads(request.body)
        except ValueError:
            raise Denied(400, "a JSON body is required") from None
        if not isinstance(body, dict):
            raise Denied(400, "a JSON object is required")
        return body

    @staticmethod
    def _view(pk: Any) -> Any:
        from data_manager.models import View  # type: ignore[import-not-found]

        view = View.objects.filter(pk=pk).first() if str(pk).isdigit() else None
        if view is None:
            raise Denied(404, "not found")
        return view

    @staticmethod
    def _task(pk: Any, project: Callable[[Any], int]) -> Any:
        from tasks.models import Task  # type: ignore[import-not-found]

        task = Task.objects.filter(pk=pk).only("id", "project_id").first()
        if task is None:
            raise Denied(404, "not found")
        project(task.project_id)
        return task

    @staticmethod
    def _annotation(pk: Any, uid: int, project: Callable[[Any], int]) -> Any:
        from tasks.models import Annotation  # type: ignore[import-not-found]

        ann = Annotation.objects.filter(pk=pk).only("id", "project_id", "completed_by_id").first()
        if ann is None or ann.completed_by_id != uid:
            raise Denied(404, "not found")
        project(ann.project_id)
        return ann

    @staticmethod
    def _draft(pk: Any, uid: int, project: Callable[[Any], int]) -> Any:
        from tasks.models import AnnotationDraft  # type: ignore[import-not-found]

        draft = AnnotationDraft.objects.filter(pk=pk).select_related("task").first()
        if draft is None or draft.user_id != uid:
            raise Denied(404, "not found")
        project(draft.task.project_id)
        return draft

    def _check_author(self, request: Any, uid: int) -> None:
        body = self._body(request)
        if "completed_by" in body and _user_id(body["completed_by"]) != uid:
            raise Denied(403, "annotators may only annotate in their own name")

    def _check_view_data(self, body: dict[str, Any]) -> None:
        data: dict[str, Any] = body["data"] if isinstance(body.get("data"), dict) else {}
        check_filters(data.get("filters"), data.get("ordering"))
        check_filters(body.get("filters"), body.get("ordering"))

    def _check_query(self, request: Any, pid: int) -> None:
        """The task selection of a list or label-stream call: view, ``query`` or body."""
        view_id = request.GET.get("view")
        if view_id:
            view = self._view(view_id)
            if view.project_id != pid:
                raise Denied(404, "not found")
            params = view.get_prepare_tasks_params()
            check_filters(_as_dict(params.filters), params.ordering)
        if "query" in request.GET:
            from urllib.parse import unquote

            try:
                query = json.loads(unquote(request.GET["query"]))
            except ValueError:
                raise Denied(400, "query must be JSON") from None
            if isinstance(query, dict):
                check_filters(query.get("filters"), query.get("ordering"))
        body = self._body(request) if request.method != "GET" or request.body else {}
        if body:
            check_filters(body.get("filters"), body.get("ordering"))
            if body.get("view"):
                view = self._view(body["view"])
                if view.project_id != pid:
                    raise Denied(404, "not found")
                params = view.get_prepare_tasks_params()
                check_filters(_as_dict(params.filters), params.ordering)
        if "ordering" in request.GET:
            check_filters(None, request.GET.getlist("ordering"))

    @staticmethod
    def _only_projects(payload: Json, granted: frozenset[int]) -> Json:
        rows = _results(payload)
        if rows is None:
            raise Denied(403, "unexpected answer withheld from an annotator")
        kept = [r for r in rows if isinstance(r, dict) and _user_id(r.get("id")) in granted]
        if isinstance(payload, dict):
            return {**payload, "results": kept, "count": len(kept), "next": None}
        return kept

    @staticmethod
    def _scrub_task_list(payload: Json, uid: int) -> Json:
        if isinstance(payload, dict) and isinstance(payload.get("tasks"), list):
            out = {k: v for k, v in payload.items() if k in ("total", "tasks")}
            out["tasks"] = [scrub_task(t, uid) for t in payload["tasks"]]
            return out
        rows = _results(payload)
        if rows is None:
            raise Denied(403, "unexpected answer withheld from an annotator")
        scrubbed = [scrub_task(t, uid) for t in rows]
        return {**payload, "results": scrubbed} if isinstance(payload, dict) else scrubbed

    @staticmethod
    def _own(payload: Json, uid: int, field: str) -> Json:
        rows = _results(payload)
        if rows is None:
            raise Denied(403, "unexpected answer withheld from an annotator")
        kept = [r for r in rows if isinstance(r, dict) and _user_id(r.get(field)) == uid]
        return (
            {**payload, "results": kept, "count": len(kept)} if isinstance(payload, dict) else kept
        )

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
