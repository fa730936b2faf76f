"""``annotate users``: one Label Studio account per roster member, with a password people can use.

The roster's ``email`` column (carried into the groups manifest by ``allocate``) is the login
when given, else ``<annotator_id>@annotators.emotions-data.local``. Passwords are random, set on
the embedded server in one call (``Client.set_accounts``) and written, with the login URL, to a
mode-0600 CSV for the lab manager; they are never printed or logged.

Idempotent: a re-run keeps every password in the CSV and only repairs accounts (missing ones are
made again, a half-made one joins the organization); ``reset`` gives everyone a new password.
Annotators an evaluation removed (``active`` false in the groups manifest) are deactivated:
Label Studio refuses their login and their sessions, and they leave the CSV. Crash safety: the
annotators whose new password is written to the CSV but not yet confirmed by the server are
listed in ``<csv>.pending`` until it is, so a re-run sets them again instead of trusting a CSV
the server never saw.
"""

from __future__ import annotations

import csv
import io
import os
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from emotions_data.annotation.blinding import inactive_annotators, publish_access
from emotions_data.annotation.client import Client, user_email
from emotions_data.annotation.server import SERVER_DIR, Server
from emotions_data.annotation.state import State
from emotions_data.schema.atomic import atomic_write_text
from emotions_data.schema.errors import ConfigError, ServiceError

CREDENTIAL_COLUMNS = ("annotator_id", "email", "password", "login_url")
DEFAULT_CREDENTIALS = Path(SERVER_DIR) / "credentials.csv"
_EMAIL = re.compile(r"^[^@\s,;\"']+@[^@\s,;\"']+\.[^@\s,;\"']+$")


@dataclass
class AccountsResult:
    credentials: Path
    login_url: str
    created: list[str] = field(default_factory=list)
    passwords_set: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deactivated: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:  # no passwords
        return {
            "credentials": str(self.credentials),
            "login_url": self.login_url,
            "created": self.created,
            "passwords_set": self.passwords_set,
            "unchanged": self.unchanged,
            "deactivated": self.deactivated,
        }


def _cell(value: object) -> str:
    if value is None or (not isinstance(value, str) and bool(pd.isna(value))):
        return ""
    return str(value).strip()


def account_emails(groups: pd.DataFrame) -> dict[str, str]:
    """annotator_id -> login e-mail: the roster's ``email`` when given, else the generated one."""
    out: dict[str, str] = {}
    seen: dict[str, str] = {}
    for _, row in groups.iterrows():
        annotator = str(row["annotator_id"])
        email = _cell(row.get("email")) or user_email(annotator)
        if not _EMAIL.match(email):
            raise ConfigError(
                f"roster: email {email!r} of annotator {annotator!r} is not an e-mail address"
            )
        other = seen.get(email.lower())
        if other is not None and other != annotator:
            raise ConfigError(
                f"roster: annotators {other!r} and {annotator!r} share the email {email!r}; "
                "each person needs their own"
            )
        seen[email.lower()] = annotator
        out[annotator] = email
    return out


def read_credentials(path: Path) -> dict[str, dict[str, str]]:
    if not path.exists():
        return {}
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if tuple(reader.fieldnames or ()) != CREDENTIAL_COLUMNS:
            raise ConfigError(
                f"{path}: not a credentials file (columns {', '.join(CREDENTIAL_COLUMNS)})"
            )
        return {row["annotator_id"]: row for row in reader}


def _write_private(path: Path, text: str) -> None:
    # atomic_write_text writes through a mkstemp file: mode 0600 from the first byte.
    atomic_write_text(path, text)
    os.chmod(path, 0o600)


def _credentials_text(rows: Sequence[dict[str, str]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CREDENTIAL_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def login_url(server: Server) -> str:
    return (server.public_url or server.url).rstrip("/") + "/user/login/"


def sync_accounts(
    root: Path,
    server: Server,
    groups: pd.DataFrame,
    *,
    out: Path | None = None,
    reset: bool = False,
    stage_order: Sequence[str] = (),
) -> AccountsResult:
    """Make or update every roster member's account; write the credentials CSV (see module doc)."""
    if server.data_dir is None:
        raise ServiceError(
            f"Label Studio at {server.url} is not the embedded server: its API cannot set "
            "passwords; invite annotators with its own invite link instead (see "
            "docs/guides/lab-round.md, 'Running a round with people')"
        )
    root = Path(root)
    out = Path(out) if out is not None else root / DEFAULT_CREDENTIALS
    pending_path = out.with_name(out.name + ".pending")
    emails = account_emails(groups)
    inactive = inactive_annotators(groups)
    previous = read_credentials(out)
    pending = set(pending_path.read_text().split()) if pending_path.exists() else set()
    url = login_url(server)
    rows: list[dict[str, str]] = []
    must_set: set[str] = set(pending)
    for annotator in sorted(emails):
        if annotator in inactive:
            continue
        row = previous.get(annotator)
        if row is None or reset or row["email"] != emails[annotator] or not row["password"]:
            password = secrets.token_urlsafe(12)
            must_set.add(annotator)
        else:
            password = row["password"]
        rows.append(
            {
                "annotator_id": annotator,
                "email": emails[annotator],
                "password": password,
                "login_url": url,
            }
        )
    must_set &= {r["annotator_id"] for r in rows}
    # The pending list first, then the passwords: a crash in between costs a re-set, never a
    # CSV whose passwords the server does not know.
    if must_set:
        _write_private(pending_path, "\n".join(sorted(must_set)) + "\n")
    _write_private(out, _credentials_text(rows))
    state = State.load(root)
    state.bind_server(server.identity)
    accounts: list[dict[str, Any]] = [
        {
            "email": r["email"],
            "username": r["annotator_id"],
            "first_name": r["annotator_id"],
            "password": r["password"],
            "reset": r["annotator_id"] in must_set,
            "active": True,
        }
        for r in rows
    ]
    # Removed annotators who ever had an account are switched off; others get none.
    removed = sorted(a for a in inactive if a in state.users or a in previous)
    accounts += [
        {"email": emails[a], "username": a, "first_name": a, "active": False} for a in removed
    ]
    answer = Client(server).set_accounts(accounts) if accounts else {}
    by_email = {e.lower(): v for e, v in answer.items()}
    result = AccountsResult(credentials=out, login_url=url, deactivated=removed)
    for annotator, email in emails.items():
        got = by_email.get(email.lower())
        if got is None:
            continue
        state.users[annotator] = int(got["id"])
        if annotator in removed:
            continue
        if got.get("created"):
            result.created.append(annotator)
        elif annotator in must_set:
            result.passwords_set.append(annotator)
        else:
            result.unchanged.append(annotator)
    state.save()
    pending_path.unlink(missing_ok=True)
    publish_access(server, state, stage_order, groups)
    for names in (result.created, result.passwords_set, result.unchanged):
        names.sort()
    return result


def deactivate_removed(server: Server, state: State, groups: pd.DataFrame) -> list[str]:
    """Switch off the accounts of annotators an evaluation removed (embedded server only)."""
    if server.data_dir is None:
        return []
    emails = account_emails(groups)
    removed = sorted(a for a in inactive_annotators(groups) if a in state.users)
    if removed:
        Client(server).set_accounts(
            [{"email": emails[a], "username": a, "active": False} for a in removed]
        )
    return removed
