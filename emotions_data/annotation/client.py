"""The one module that talks to Label Studio (and the only importer of ``label_studio_sdk``).

Every call goes through :func:`_api`, which turns connection failures and HTTP errors into a
one-line ``ServiceError`` without the token. Lookups by title/e-mail make creation idempotent
when the bookkeeping state was lost between a create and its state write.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator, Sequence
from typing import Any

from emotions_data.annotation.endpoint import Server, http_client
from emotions_data.schema.errors import ServiceError

#: E-mail domain of the Label Studio accounts made for roster annotators.
USER_DOMAIN = "annotators.emotions-data.local"


def user_email(annotator_id: str) -> str:
    return f"{annotator_id}@{USER_DOMAIN}"


@contextlib.contextmanager
def _api(server: Server, what: str) -> Iterator[None]:
    import httpx
    from label_studio_sdk.core.api_error import ApiError

    try:
        yield
    except ApiError as exc:
        body = exc.body if isinstance(exc.body, str | dict) else ""
        detail = json.dumps(body)[:200] if body else ""
        raise ServiceError(
            f"Label Studio at {server.url}: {what} failed (HTTP {exc.status_code}) {detail}".strip()
        ) from None
    except (httpx.TransportError, OSError) as exc:
        raise ServiceError(
            f"Label Studio at {server.url} is unreachable during {what} ({type(exc).__name__})"
        ) from None


class Client:
    """A thin, typed wrapper of the SDK calls the protocol needs."""

    def __init__(self, server: Server, timeout_s: float = 300.0) -> None:
        from label_studio_sdk import LabelStudio

        self.server = server
        # one httpx client for the SDK and our own calls: the same TLS trust and time-out
        self.http = http_client(
            server.url, server.token, certfile=server.certfile, timeout=timeout_s
        )
        self.ls: Any = LabelStudio(  # type: ignore[no-untyped-call]
            base_url=server.url, api_key=server.token, timeout=timeout_s, httpx_client=self.http
        )
        self._org: int | None = None

    # -- users -------------------------------------------------------------------------------
    def organization(self) -> int:
        if self._org is None:
            with _api(self.server, "whoami"):
                me = self.ls.users.whoami()
            self._org = int(me.active_organization or 1)
        return self._org

    def users_by_email(self) -> dict[str, int]:
        with _api(self.server, "listing users"):
            users = self.ls.users.list()
        return {str(u.email): int(u.id) for u in users if u.email and u.id is not None}

    def ensure_users(
        self,
        annotator_ids: Sequence[str],
        known: dict[str, int],
        emails: dict[str, str] | None = None,
    ) -> dict[str, int]:
        """Label Studio user ids of the annotators, creating accounts that do not exist yet.

        ``emails``: the roster's address per annotator (default: the generated one).
        """
        out = {a: known[a] for a in annotator_ids if a in known}
        missing = [a for a in annotator_ids if a not in out]
        if not missing:
            return out
        existing = {e.lower(): i for e, i in self.users_by_email().items()}
        org = self.organization()
        for annotator in missing:
            email = (emails or {}).get(annotator) or user_email(annotator)
            if email.lower() in existing:
                out[annotator] = existing[email.lower()]
                # Made by a run that died before joining it to the organization: repair.
                with _api(self.server, f"updating user {annotator!r}"):
                    self.ls.users.update(out[annotator], active_organization=org)
                continue
            with _api(self.server, f"creating user {annotator!r}"):
                user = self.ls.users.create(username=annotator, email=email, first_name=annotator)
                # Users made through the API see no project until they join the organization.
                self.ls.users.update(int(user.id), active_organization=org)
            out[annotator] = int(user.id)
        return out

    def set_accounts(self, accounts: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Create or update accounts with passwords and active flags in one call (embedded server).

        Label Studio's REST API sets neither passwords nor ``is_active``; the hardened embedded
        server answers ``POST /emotions-data/accounts`` for its admin token only. Passwords are
        sent to the local server and never logged.
        """
        import httpx

        try:
            resp = self.http.post("/emotions-data/accounts", json={"accounts": accounts})
        except (httpx.TransportError, OSError) as exc:
            raise ServiceError(
                f"Label Studio at {self.server.url} is unreachable while setting accounts "
                f"({type(exc).__name__})"
            ) from None
        if resp.status_code == 404:
            raise ServiceError(
                f"Label Studio at {self.server.url} cannot set passwords: accounts with passwords "
                "need the embedded server (`emotions-data annotate server start`)"
            )
        if resp.status_code != 200:
            raise ServiceError(
                f"Label Studio at {self.server.url}: setting accounts failed (HTTP {resp.status_code})"
            )
        users = resp.json().get("users", {})
        return {str(k): dict(v) for k, v in users.items()}

    # -- projects ----------------------------------------------------------------------------
    def find_project(self, title: str) -> int | None:
        with _api(self.server, f"looking up project {title!r}"):
            for project in self.ls.projects.list(title=title):
                if project.title == title and project.id is not None:
                    return int(project.id)
        return None

    def project_exists(self, project_id: int) -> bool:
        from label_studio_sdk.core.api_error import ApiError

        try:
            with _api(self.server, f"reading project {project_id}"):
                self.ls.projects.get(project_id)
        except ServiceError as exc:
            if "HTTP 404" in str(exc):
                return False
            raise
        except ApiError:  # pragma: no cover - translated above
            return False
        return True

    def create_project(
        self, title: str, label_config: str, maximum_annotations: int, description: str
    ) -> int:
        with _api(self.server, f"creating project {title!r}"):
            project = self.ls.projects.create(
                title=title,
                label_config=label_config,
                maximum_annotations=maximum_annotations,
                description=description,
                show_skip_button=True,
            )
        return int(project.id)

    def ensure_local_storage(self, project_id: int, folder: str) -> None:
        """A Local Storage connection: without it Label Studio answers 404 for local media."""
        with _api(self.server, f"listing storages of project {project_id}"):
            storages = self.ls.import_storage.local.list(project=project_id)
        if any(getattr(s, "path", None) == folder for s in storages):
            return
        with _api(self.server, f"adding local storage to project {project_id}"):
            self.ls.import_storage.local.create(
                project=project_id,
                path=folder,
                use_blob_urls=True,
                title="media",
                regex_filter=r"^$",  # serve files, never sync them in as tasks
            )

    # -- tasks and annotations ---------------------------------------------------------------
    def import_tasks(self, project_id: int, tasks: list[dict[str, Any]]) -> list[int]:
        with _api(self.server, f"importing {len(tasks)} tasks into project {project_id}"):
            result = self.ls.projects.import_tasks(project_id, request=tasks, return_task_ids=True)
        return [int(t) for t in (result.task_ids or [])]

    def delete_all_tasks(self, project_id: int) -> None:
        with _api(self.server, f"deleting the tasks of project {project_id}"):
            self.ls.tasks.delete_all_tasks(id=project_id)

    def export_tasks(self, project_id: int, poll_s: float = 0.2, timeout_s: float = 600) -> Any:
        """All tasks of the project with their annotations, from an export snapshot (JSON)."""
        import httpx
        from label_studio_sdk.core.api_error import ApiError

        with _api(self.server, f"exporting project {project_id}"):
            export = self.ls.projects.exports.create(project_id, title="emotions-data pull")
            export_id = int(export.id)
            deadline = time.monotonic() + timeout_s
            status = export.status
            while status not in ("completed", "failed"):
                if time.monotonic() > deadline:
                    raise ServiceError(
                        f"Label Studio export of project {project_id} did not finish in {timeout_s:.0f} s"
                    )
                time.sleep(poll_s)
                status = self.ls.projects.exports.get(project_id, export_id).status
            if status == "failed":
                raise ServiceError(f"Label Studio export of project {project_id} failed")
            data = b"".join(
                self.ls.projects.exports.download(project_id, export_id, export_type="JSON")
            )
            # Snapshots are files on the server: do not let repeated pulls pile them up. One left
            # behind costs disk space, never data, so a failed delete does not fail the pull.
            with contextlib.suppress(ApiError, httpx.TransportError):
                self.ls.projects.exports.delete(project_id, export_id)
        try:
            return json.loads(data)
        except ValueError:
            raise ServiceError(
                f"Label Studio export of project {project_id} is not valid JSON"
            ) from None

    def annotate(
        self,
        task_id: int,
        label: str,
        user_id: int,
        lead_time_s: float,
        from_name: str,
        to_name: str,
    ) -> int:
        """Create a choice annotation for ``user_id`` (``completed_by``), as the annotator would."""
        result = [
            {
                "from_name": from_name,
                "to_name": to_name,
                "type": "choices",
                "value": {"choices": [label]},
            }
        ]
        with _api(self.server, f"annotating task {task_id}"):
            ann = self.ls.annotations.create(
                task_id, result=result, completed_by=user_id, lead_time=lead_time_s
            )
        return int(ann.id)
