"""A dataset root with a running embedded server, two groups of real accounts, and login helpers.

Shared by the HTTP blinding tests and the browser test (tests/annotation/test_people*.py).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import yaml

from emotions_data.annotation.protocol import Protocol, load_protocol
from emotions_data.annotation.push import push_stage
from emotions_data.annotation.server import Server
from emotions_data.annotation.state import State
from emotions_data.annotation.store import write_groups
from emotions_data.testing.media import make_clip

PROTOCOL = {
    "name": "people",
    "groups": 2,
    "taxonomy": "emotions6",
    "stages": [{"name": "primary", "judgements": 2}],
}
#: a1 has the roster's own address; the others get generated ones.
ROSTER_EMAIL = "ann.one@lab.example.org"


@dataclass
class PeopleRoot:
    root: Path
    server: Server
    protocol_path: Path
    groups_path: Path
    videos: pd.DataFrame

    @property
    def protocol(self) -> Protocol:
        return load_protocol(str(self.protocol_path))

    def state(self) -> State:
        return State.load(self.root)

    def credentials(self) -> dict[str, dict[str, str]]:
        path = self.root / "labelstudio" / "credentials.csv"
        with open(path, newline="") as fh:
            return {r["annotator_id"]: r for r in csv.DictReader(fh)}


def groups_frame(active_b2: bool = True) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "annotator_id": ["a1", "a2", "b1", "b2"],
            "group_id": ["A", "A", "B", "B"],
            "leader": [True, False, True, False],
            "active": [True, True, True, active_b2],
            "reason": [None, None, None, None if active_b2 else "removed in a test"],
            "updated_stage": [None, None, None, None if active_b2 else "evaluate_a"],
            "email": [ROSTER_EMAIL, None, None, None],
        }
    )


def make_people_root(root: Path, server: Server) -> PeopleRoot:
    """4 playable clips, groups A (a1, a2) and B (b1, b2), the primary stage pushed."""
    rows = []
    for i in range(4):
        rel = f"normalized/clip{i}.mp4"
        make_clip(root / rel, width=96, height=160, duration=1.0, source="color", layout=i)
        rows.append(
            {
                "video_id": f"clip{i}",
                "platform": "tiktok",
                "source_url": f"https://example.org/v/clip{i}",
                "status": "ok",
                "normalized_path": rel,
            }
        )
    videos = pd.DataFrame(rows)
    protocol_path = root / "people.yaml"
    protocol_path.write_text(yaml.safe_dump(PROTOCOL))
    groups_path = root / "groups.parquet"
    write_groups(groups_frame(), groups_path, params={"test": True})
    people = PeopleRoot(root, server, protocol_path, groups_path, videos)
    push_stage(root, server, people.protocol, "primary", videos, groups_frame(), seed=0)
    return people


class Session:
    """A browser-like session: the login form, then the API with the session cookie."""

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")
        self.http = httpx.Client(base_url=self.base, timeout=30.0, follow_redirects=False)

    def login(self, email: str, password: str) -> bool:
        self.http.get("/user/login/")
        csrf = self.http.cookies.get("csrftoken", "")
        resp = self.http.post(
            "/user/login/",
            data={"email": email, "password": password, "csrfmiddlewaretoken": csrf},
            headers={"Referer": self.base + "/user/login/"},
        )
        return resp.status_code in (301, 302) and self.get("/api/current-user/whoami").is_success

    def _headers(self) -> dict[str, str]:
        return {"X-CSRFToken": self.http.cookies.get("csrftoken", "")}

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.http.get(path, params=params or None)

    def post(self, path: str, body: Any) -> httpx.Response:
        return self.http.post(path, json=body, headers=self._headers())

    def patch(self, path: str, body: Any) -> httpx.Response:
        return self.http.patch(path, json=body, headers=self._headers())

    def close(self) -> None:
        self.http.close()


def query(filters: list[dict[str, Any]], ordering: list[str] | None = None) -> str:
    return json.dumps(
        {"filters": {"conjunction": "and", "items": filters}, "ordering": ordering or []}
    )
