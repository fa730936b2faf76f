"""A loopback HTTP file server for tests and the demo (yt-dlp fetches from it like from a site).

It serves a directory with correct ``Content-Length``/``Content-Type`` and single-range
``Range`` requests (yt-dlp's http downloader resumes with ranges), answers 404 for missing
files (or for paths listed in ``missing``), and can drop the first N connections to a path
without any response, which is how a flaky CDN looks to a client (the retry path).

Example::

    with serve_directory(tmp_path) as server:
        url = server.url("clip.mp4")
        ...
        assert server.requests["/clip.mp4"] == 1
"""

from __future__ import annotations

import mimetypes
import re
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_CHUNK = 64 * 1024


class LoopbackServer:
    """State shared by the handler threads: the served directory, faults to inject, counters."""

    def __init__(
        self,
        directory: Path,
        *,
        fail_first: dict[str, int] | None = None,
        missing: set[str] | None = None,
    ) -> None:
        self.directory = directory.resolve()
        # keys are URL paths with a leading slash, whatever the caller wrote
        self.fail_first = {_norm(k): int(v) for k, v in (fail_first or {}).items()}
        self.missing = {_norm(k) for k in (missing or set())}
        self.requests: Counter[str] = Counter()
        self.dropped: Counter[str] = Counter()
        self.base_url = ""
        self._lock = threading.Lock()

    def url(self, relpath: str) -> str:
        """The full URL of ``relpath`` (relative to the served directory)."""
        return self.base_url + quote(_norm(relpath))

    def take_down(self, relpath: str) -> None:
        """Answer 404 for ``relpath`` from now on (a link that died after the release)."""
        with self._lock:
            self.missing.add(_norm(relpath))

    def _count(self, path: str) -> bool:
        """Count one request to ``path``; True when this connection is to be dropped."""
        with self._lock:
            self.requests[path] += 1
            if self.dropped[path] < self.fail_first.get(path, 0):
                self.dropped[path] += 1
                return True
            return False

    def resolve(self, path: str) -> Path | None:
        """The file for a URL path, or None when missing or outside the served directory."""
        if path in self.missing:
            return None
        candidate = (self.directory / path.lstrip("/")).resolve()
        if not candidate.is_relative_to(self.directory) or not candidate.is_file():
            return None
        return candidate


def _norm(path: str) -> str:
    return "/" + path.lstrip("/")


def _make_handler(state: LoopbackServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            return  # keep test output quiet

        def do_HEAD(self) -> None:
            self._serve(body=False)

        def do_GET(self) -> None:
            self._serve(body=True)

        def _serve(self, *, body: bool) -> None:
            path = unquote(urlsplit(self.path).path)
            if state._count(path):
                # close without a status line: the client sees a dropped connection
                self.close_connection = True
                with suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            file = state.resolve(path)
            if file is None:
                self._send_empty(404, "Not Found")
                return
            size = file.stat().st_size
            start, end = 0, size - 1
            status = 200
            header = self.headers.get("Range")
            if header:
                match = _RANGE.match(header.strip())
                if match is None or (not match.group(1) and not match.group(2)):
                    self._send_empty(416, "Range Not Satisfiable", size=size)
                    return
                if match.group(1):
                    start = int(match.group(1))
                    if match.group(2):
                        end = min(int(match.group(2)), size - 1)
                else:  # suffix range: the last N bytes
                    start = max(0, size - int(match.group(2)))
                if start >= size or start > end:
                    self._send_empty(416, "Range Not Satisfiable", size=size)
                    return
                status = 206
            length = end - start + 1
            self.send_response(status)
            ctype = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
            if file.suffix.lower() == ".mp4":
                ctype = "video/mp4"
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(length))
            self.send_header("Accept-Ranges", "bytes")
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            self.end_headers()
            if not body:
                return
            try:
                with file.open("rb") as fh:
                    fh.seek(start)
                    remaining = length
                    while remaining > 0:
                        chunk = fh.read(min(_CHUNK, remaining))
                        if not chunk:
                            break
                        self.wfile.write(chunk)
                        remaining -= len(chunk)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        def _send_empty(self, code: int, reason: str, *, size: int | None = None) -> None:
            self.send_response(code, reason)
            self.send_header("Content-Length", "0")
            if size is not None:
                self.send_header("Content-Range", f"bytes */{size}")
            self.end_headers()

    return Handler


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        # clients that hang up mid-transfer (yt-dlp closing a kept-alive connection, the
        # dropped-connection fault) are normal here; do not print tracebacks into test output
        return


@contextmanager
def serve_directory(
    directory: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    fail_first: dict[str, int] | None = None,
    missing: set[str] | None = None,
) -> Iterator[LoopbackServer]:
    """Serve ``directory`` over HTTP on ``host:port`` (0 = a free port) in a background thread.

    ``fail_first`` maps a relative path to how many of its first requests are dropped (the
    connection closes with no response); ``missing`` lists paths answered with 404 even if the
    file exists. The server stops when the ``with`` block ends.
    """
    state = LoopbackServer(Path(directory), fail_first=fail_first, missing=missing)
    httpd = _QuietServer((host, port), _make_handler(state))
    bound_host, bound_port = httpd.server_address[:2]
    state.base_url = f"http://{bound_host!s}:{bound_port}"
    thread = threading.Thread(
        target=httpd.serve_forever,
        kwargs={"poll_interval": 0.05},
        name="loopback-http",
        daemon=True,
    )
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
