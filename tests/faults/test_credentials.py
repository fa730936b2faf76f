"""Issue 13, case 6: credentials in a URL reach the server but never a manifest, a completion
record, a message or any file under the root."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pandas as pd
import pytest

from emotions_data.ingest.faults import stored_url, url_secrets
from tests.faults.conftest import cli

pytestmark = [pytest.mark.ffmpeg]

USER, PASSWORD, TOKEN = "alice", "pw-Secret1", "tok-Secret2"


@pytest.fixture
def guarded(site: Path) -> Iterator[str]:
    """A loopback server that serves c0.mp4 only with the password and the token."""
    body = (site / "c0.mp4").read_bytes()
    expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

        def do_GET(self) -> None:
            query = parse_qs(urlsplit(self.path).query)
            allowed = self.headers.get("Authorization") == expected and query.get("token") == [
                TOKEN
            ]
            if urlsplit(self.path).path != "/c0.mp4" or not allowed:
                self.send_response(404 if allowed else 403)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()


def test_credentials_are_used_for_the_download_and_stored_nowhere(
    guarded: str, tmp_path: Path
) -> None:
    good = f"http://{USER}:{PASSWORD}@{guarded}/c0.mp4?token={TOKEN}&lang=en"
    gone = f"http://{USER}:{PASSWORD}@{guarded}/gone.mp4?lang=en&access_token={TOKEN}"
    urls = tmp_path / "urls.csv"
    pd.DataFrame({"url": [good, gone]}).to_csv(urls, index=False)
    root = tmp_path / "root"
    done = cli("fetch", str(urls), "--out", str(root), "--no-progress", "--workers", "1")
    assert done.returncode == 0, done.stderr
    df = pd.read_parquet(root / "videos.parquet").set_index("source_url")
    assert df.loc[f"http://{guarded}/c0.mp4?lang=en", "status"] == "ok"  # sent, then stripped
    assert df.loc[f"http://{guarded}/gone.mp4?lang=en", "status"] == "failed"
    for secret in (PASSWORD, TOKEN):
        assert secret not in done.stdout + done.stderr
        assert secret not in df.reset_index().astype(str).to_string()
        for path in root.rglob("*"):
            assert not path.is_file() or secret.encode() not in path.read_bytes(), path


@pytest.mark.parametrize(
    ("url", "stored"),
    [
        ("https://u:p@cdn.example/v.mp4", "https://cdn.example/v.mp4"),
        ("https://cdn.example/v.mp4?sig=abc&id=7", "https://cdn.example/v.mp4?id=7"),
        (
            "https://b.s3.amazonaws.com/v.mp4?X-Amz-Credential=k&X-Amz-Signature=s&x=1",
            "https://b.s3.amazonaws.com/v.mp4?x=1",
        ),
        ("https://www.douyin.com/video/7234?previous_page=app", None),  # unchanged
        ("https://site/v?a=%20b&api_key=K#frag", "https://site/v?a=%20b#frag"),
    ],
)
def test_stored_url_drops_user_info_and_token_parameters_only(url: str, stored: str | None) -> None:
    assert stored_url(url) == (stored or url)
    if stored:
        assert url_secrets(url)
