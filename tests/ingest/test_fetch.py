"""fetch: real yt-dlp against the loopback server (no mocks), error kinds, retries, resume."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from emotions_data.cli import main
from emotions_data.ingest.fetch import FetchSummary, fetch, read_url_list
from emotions_data.ingest.probe import probe
from emotions_data.schema.ids import url_video_id
from emotions_data.schema.io import read_manifest
from emotions_data.testing.http import LoopbackServer, serve_directory

pytestmark = [pytest.mark.ffmpeg]

FAST = {"default": {"backoff_s": 0.05, "retries": 3}}
NAMES = ["card.mp4", "noise.mp4", "gone.mp4", "truncated.mp4", "silent.mp4", "card-copy.mp4"]


@pytest.fixture(scope="module")
def server(site: Path) -> Iterator[LoopbackServer]:
    with serve_directory(site, fail_first={"noise.mp4": 2}) as srv:
        yield srv


@pytest.fixture(scope="module")
def fetched(
    server: LoopbackServer, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, FetchSummary]:
    root = tmp_path_factory.mktemp("fetched")
    urls = pd.DataFrame(
        {
            "url": [server.url(n) for n in NAMES] + ["ftp://example.org/a.mp4"],
            "platform": ["douyin", "tiktok", "douyin", "kuaishou", "tiktok", "kuaishou", "x"],
            "keyword": [f"k{i}" for i in range(7)],
            "video_id": [f"expected-{i}" for i in range(7)],
        }
    )
    return root, fetch(urls, root, workers=2, profile=FAST, progress=False)


def _rows(root: Path) -> dict[str, dict[str, object]]:
    df = read_manifest(root / "videos.parquet", "videos").df
    return {
        Path(str(u)).name: r for u, r in zip(df["source_url"], df.to_dict("records"), strict=True)
    }


def test_statuses_error_kinds_and_retry(
    fetched: tuple[Path, FetchSummary], server: LoopbackServer
) -> None:
    root, summary = fetched
    rows = _rows(root)
    assert {n: rows[n]["status"] for n in NAMES} == {
        "card.mp4": "ok",
        "noise.mp4": "ok",
        "gone.mp4": "failed",
        "truncated.mp4": "failed",
        "silent.mp4": "ok",
        "card-copy.mp4": "ok",
    }
    assert rows["gone.mp4"]["error_kind"] == "unavailable"
    assert "404" in str(rows["gone.mp4"]["error_message"])
    assert rows["truncated.mp4"]["error_kind"] == "bad_media"
    assert rows["a.mp4"]["error_kind"] == "unsupported_url"
    # the first two connections to noise.mp4 were dropped; backoff retried until it worked
    assert server.dropped["/noise.mp4"] == 2
    assert server.requests["/noise.mp4"] >= 3
    assert summary.by_status == {"failed": 3, "ok": 4}
    assert summary.by_error == {"bad_media": 1, "unavailable": 1, "unsupported_url": 1}
    assert summary.to_dict()["downloaded"] == 4


def test_ids_paths_and_carried_columns(
    fetched: tuple[Path, FetchSummary], server: LoopbackServer
) -> None:
    root, _ = fetched
    rows = _rows(root)
    card = rows["card.mp4"]
    # generic (direct-file) URLs: id from the URL, platform from the input column
    assert card["video_id"] == url_video_id(server.url("card.mp4"))
    assert card["platform"] == "douyin"
    assert card["media_path"] == f"media/douyin/{card['video_id']}.mp4"
    assert card["keyword"] == "k0" and card["input_video_id"] == "expected-0"
    assert card["bytes"] == (root / str(card["media_path"])).stat().st_size
    assert card["fetched_at"] is not None and card["title"] == "card"
    assert probe(root / str(card["media_path"])).has_audio
    # fetch's own ffprobe check fills the probe columns (prepare reuses them)
    assert (card["width"], card["height"], card["has_audio"]) == (160, 288, True)
    assert abs(float(card["duration_s"]) - 2.0) < 0.15  # type: ignore[arg-type]
    assert not probe(root / str(rows["silent.mp4"]["media_path"])).has_audio
    # the byte-identical copy under another URL is its own row (prepare marks it duplicate)
    assert rows["card-copy.mp4"]["sha256"] == card["sha256"]
    assert rows["card-copy.mp4"]["video_id"] != card["video_id"]
    # nothing partial anywhere: only final mp4s under media/, staging gone
    files = sorted(p.name for p in (root / "media").rglob("*") if p.is_file())
    assert all(f.endswith(".mp4") and not f.startswith(".") for f in files) and len(files) == 4
    assert not (root / ".staging").exists()


def test_rerun_skips_done_and_retry_failed(
    fetched: tuple[Path, FetchSummary], server: LoopbackServer
) -> None:
    root, _ = fetched
    urls = [server.url(n) for n in NAMES]
    before = dict(server.requests)
    again = fetch(pd.DataFrame({"url": urls}), root, workers=2, profile=FAST, progress=False)
    assert again.downloaded == 0 and again.skipped == len(NAMES)
    assert dict(server.requests) == before  # nothing was requested again
    retried = fetch(
        pd.DataFrame({"url": [server.url("gone.mp4")]}),
        root,
        workers=1,
        profile=FAST,
        retry_failed=True,
        progress=False,
        executor="serial",
    )
    assert retried.by_error == {"unavailable": 1} and retried.skipped == 0
    assert server.requests["/gone.mp4"] == before["/gone.mp4"] + 1  # 404 is not transient
    df = read_manifest(root / "videos.parquet").df
    assert df["source_url"].is_unique and len(df) == len(NAMES) + 1


def test_url_list_formats(tmp_path: Path) -> None:
    txt = tmp_path / "urls.txt"
    txt.write_text("# comment\nhttp://a/x.mp4\n\nhttp://a/x.mp4\n  http://b/y.mp4  \n")
    assert list(read_url_list(txt)["url"]) == ["http://a/x.mp4", "http://b/y.mp4"]
    headed = tmp_path / "headed.txt"  # a one-column CSV saved as .txt: the header is no URL
    headed.write_text("url\nhttp://a/x.mp4\n")
    assert list(read_url_list(headed)["url"]) == ["http://a/x.mp4"]
    csv = tmp_path / "urls.csv"
    csv.write_text("link\nhttp://a/x.mp4\n")
    with pytest.raises(Exception, match="no 'url' column"):
        read_url_list(csv)


def test_cli_secrets_never_shown(site: Path, tmp_path: Path) -> None:
    cookies = tmp_path / "SECRET-cookies.txt"
    cookies.write_text("# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t0\tsid\tabc\n")
    profile = tmp_path / "profile.yaml"
    profile.write_text(
        "default:\n"
        "  retries: 0\n"
        "  socket_timeout_s: 5\n"
        f"  cookies_file: {cookies}\n"
        "  proxy: http://user:s3cretpw@127.0.0.1:9\n"  # nothing listens on port 9
    )
    with serve_directory(site) as srv:
        urls = tmp_path / "urls.txt"
        urls.write_text(srv.url("card.mp4") + "\n")
        result = CliRunner().invoke(
            main,
            [
                "fetch",
                str(urls),
                "--out",
                str(tmp_path / "root"),
                "--profile",
                str(profile),
                "--no-progress",
                "--json",
                "-",
            ],
        )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output[result.output.index("{") :])
    assert data["by_error"] == {"network": 1}
    manifest_bytes = (tmp_path / "root" / "videos.parquet").read_bytes()
    for secret in ("s3cretpw", "SECRET-cookies", str(cookies)):
        assert secret not in result.output
        assert secret.encode() not in manifest_bytes
    message = str(read_manifest(tmp_path / "root" / "videos.parquet").df["error_message"][0])
    assert "s3cretpw" not in message and message


def test_cli_errors(tmp_path: Path) -> None:
    bad = tmp_path / "urls.csv"
    bad.write_text("link\nhttp://a/x.mp4\n")
    runner = CliRunner()
    result = runner.invoke(main, ["fetch", str(bad), "--out", str(tmp_path / "r")])
    assert (
        result.exit_code == 1 and "Error:" in result.output and "no 'url' column" in result.output
    )
    result = runner.invoke(main, ["fetch", str(tmp_path / "nope.csv"), "--out", str(tmp_path)])
    assert result.exit_code == 2
    prof = tmp_path / "p.yaml"
    prof.write_text("default: {cookie: x}\n")
    good = tmp_path / "u.txt"
    good.write_text("http://127.0.0.1:9/a.mp4\n")
    result = runner.invoke(
        main, ["fetch", str(good), "--out", str(tmp_path / "r"), "--profile", str(prof)]
    )
    assert result.exit_code == 1 and "default.cookie: expected one of the keys" in result.output
    assert "found an unknown key" in result.output


@pytest.mark.parametrize("text", ["", "\n# only a comment\n", "url\n", "url,platform\n,tiktok\n"])
def test_cli_empty_url_list_is_an_error(tmp_path: Path, text: str) -> None:
    urls = tmp_path / ("urls.txt" if "url" not in text else "urls.csv")
    urls.write_text(text)
    out = tmp_path / "r"
    result = CliRunner().invoke(main, ["fetch", str(urls), "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error:") and "no URLs" in result.output
    assert urls.name in result.output and len(result.output.strip().splitlines()) == 1
    assert not out.exists()  # nothing is created for a list that cannot be right


def test_cli_url_list_not_text_is_an_error(tmp_path: Path) -> None:
    urls = tmp_path / "urls.txt"
    urls.write_bytes(b"\xcc\xff\x00binary")
    result = CliRunner().invoke(main, ["fetch", str(urls), "--out", str(tmp_path / "r")])
    assert result.exit_code == 1 and result.output.startswith("Error:"), result.output
    assert "urls.txt: not UTF-8 text" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_file_urls_need_the_flag(site: Path, tmp_path: Path) -> None:
    urls = pd.DataFrame({"url": [(site / "red.mp4").as_uri()]})
    refused = fetch(urls, tmp_path, progress=False, executor="serial")
    assert refused.by_error == {"unsupported_url": 1}
    assert not (tmp_path / "media").exists()
    allowed = fetch(
        urls, tmp_path, progress=False, executor="serial", allow_file_urls=True, retry_failed=True
    )
    assert allowed.by_status == {"ok": 1} and len(list((tmp_path / "media").rglob("*.mp4"))) == 1
