"""The loopback HTTP server used by the fetch tests and the demo."""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from emotions_data.testing.http import serve_directory


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), b""


@pytest.fixture
def served(tmp_path: Path) -> Path:
    (tmp_path / "clip.mp4").write_bytes(bytes(range(256)) * 40)  # 10240 bytes
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a b.mp4").write_bytes(b"xyz")
    return tmp_path


def test_full_get_has_length_type_and_counts(served: Path) -> None:
    with serve_directory(served) as server:
        status, headers, body = _get(server.url("clip.mp4"))
        assert status == 200
        assert headers["Content-Type"] == "video/mp4"
        assert int(headers["Content-Length"]) == 10240 == len(body)
        assert body == (served / "clip.mp4").read_bytes()
        assert headers["Accept-Ranges"] == "bytes"
        status, _, body = _get(server.url("sub/a b.mp4"))
        assert (status, body) == (200, b"xyz")
        assert server.requests["/clip.mp4"] == 1
        assert server.base_url.startswith("http://127.0.0.1:")


def test_ranges(served: Path) -> None:
    data = (served / "clip.mp4").read_bytes()
    with serve_directory(served) as server:
        status, headers, body = _get(server.url("clip.mp4"), {"Range": "bytes=100-199"})
        assert status == 206 and body == data[100:200]
        assert headers["Content-Range"] == "bytes 100-199/10240"
        status, _, body = _get(server.url("clip.mp4"), {"Range": "bytes=10000-"})
        assert status == 206 and body == data[10000:]
        status, _, body = _get(server.url("clip.mp4"), {"Range": "bytes=-40"})
        assert status == 206 and body == data[-40:]
        status, headers, _ = _get(server.url("clip.mp4"), {"Range": "bytes=20000-"})
        assert status == 416 and headers["Content-Range"] == "bytes */10240"


def test_missing_and_escape_are_404(served: Path) -> None:
    (served.parent / "secret.txt").write_text("no")
    with serve_directory(served, missing={"clip.mp4"}) as server:
        assert _get(server.url("clip.mp4"))[0] == 404
        assert _get(server.url("nope.mp4"))[0] == 404
        conn = http.client.HTTPConnection(server.base_url.removeprefix("http://"), timeout=5)
        conn.request("GET", "/../secret.txt")
        assert conn.getresponse().status == 404
        conn.close()


def test_drops_first_connections_then_serves(served: Path) -> None:
    with serve_directory(served, fail_first={"clip.mp4": 2}) as server:
        for _ in range(2):
            with pytest.raises((http.client.RemoteDisconnected, ConnectionError, OSError)):
                urllib.request.urlopen(server.url("clip.mp4"), timeout=5).read()
        status, _, body = _get(server.url("clip.mp4"))
        assert status == 200 and len(body) == 10240
        assert server.requests["/clip.mp4"] == 3
        assert server.dropped["/clip.mp4"] == 2


def test_stops_when_block_ends(served: Path) -> None:
    with serve_directory(served) as server:
        url = server.url("clip.mp4")
    with pytest.raises(OSError):
        urllib.request.urlopen(url, timeout=2)
