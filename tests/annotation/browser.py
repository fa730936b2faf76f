"""A real headless Chromium driving Label Studio as an annotator (Debian chromium +
chromium-driver, installed by scripts/setup.sh), shared by the SQLite and PostgreSQL tests."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from emotions_data.cli import main
from emotions_data.schema.io import read_manifest
from tests.annotation.people_helpers import PeopleRoot

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
BROWSER_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1000,900",
    "--autoplay-policy=no-user-gesture-required",
)


def _browser(profile: Path) -> Any:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        if os.environ.get("CI"):
            pytest.fail("chromium / chromium-driver missing (scripts/setup.sh installs them)")
        pytest.skip("chromium / chromium-driver missing (run scripts/setup.sh)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*BROWSER_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    # The Debian driver, so selenium-manager downloads nothing.
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


def _wait(what: str, check: Any, timeout_s: float = 60.0, driver: Any = None) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    seen = ""
    if driver is not None:  # where the browser was, so a failure on CI says why
        body = driver.find_elements("tag name", "body")
        seen = f" (at {driver.current_url}: {body[0].text[:300] if body else ''!r})"
    raise AssertionError(f"timed out waiting for {what}{seen}")


def label_one_in_browser(people: PeopleRoot, tmp_path: Path) -> dict[str, float]:
    """a1 logs in through the login form, opens the label stream of group A's project, sees a
    playable video and the taxonomy's choices (and nothing of group B), chooses the last class
    and submits; ``pull`` then finds exactly that judgement. Returns the seconds the labelling
    screen took to be ready and the choice + submit took."""
    from selenium.webdriver.common.by import By

    creds = people.credentials()["a1"]
    project = people.state().projects["primary/A"]
    classes = people.protocol.taxonomy.classes
    chosen = classes[-1]
    driver = _browser(tmp_path / "profile")
    try:
        driver.set_page_load_timeout(60)
        driver.get(people.server.url + "/user/login/")
        _wait("the login form", lambda: driver.find_elements(By.NAME, "email"), driver=driver)
        driver.find_element(By.NAME, "email").send_keys(creds["email"])
        driver.find_element(By.NAME, "password").send_keys(creds["password"])
        driver.find_element(By.NAME, "password").submit()
        _wait("the login", lambda: "/user/login" not in driver.current_url, driver=driver)
        opened = time.monotonic()
        driver.get(f"{people.server.url}/projects/{project}/data?labeling=1")
        _wait(
            "a playable video",
            lambda: driver.execute_script(
                "const v = document.querySelector('video'); return v && v.readyState >= 2"
            ),
        )
        shown = _wait(
            "the taxonomy's choices",
            lambda: driver.execute_script(
                "return Array.from(document.querySelectorAll('.lsf-choice__item'))"
                ".map(e => e.innerText.replace(/\\[\\d+\\]$/, '').trim())"
            ),
        )
        ready = time.monotonic()
        assert shown == list(classes)
        page = driver.find_element(By.TAG_NAME, "body").text
        found = re.search(r"Video (\S+): which emotion", page)
        assert found is not None, page[:500]
        video_id = found.group(1)
        # the blinded UI shows no other group's project
        assert "group B" not in driver.find_element(By.TAG_NAME, "body").text
        clicked = time.monotonic()
        choice = next(
            e
            for e in driver.find_elements(By.CSS_SELECTOR, ".lsf-choice__item")
            if e.text.startswith(chosen)
        )
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", choice)
        choice.click()
        shot = tmp_path / "annotator-view.png"
        driver.save_screenshot(str(shot))
        driver.find_element(
            By.CSS_SELECTOR, "button[aria-label='Submit current annotation']"
        ).click()
        _wait(
            "the next screen after submitting",
            lambda: f"Video {video_id}:" not in driver.find_element(By.TAG_NAME, "body").text,
        )
        saved = time.monotonic()
    finally:
        driver.quit()
    timing = {
        "screen_ready_s": round(ready - opened, 2),
        "choose_and_submit_s": round(saved - clicked, 2),
    }
    print(f"\nbrowser labelling timing: {json.dumps(timing)}")
    if os.environ.get("EMOTIONS_DATA_SCREENSHOT"):
        shutil.copyfile(shot, os.environ["EMOTIONS_DATA_SCREENSHOT"])
    out = people.root / "annotations.parquet"
    r = CliRunner().invoke(
        main,
        [
            "annotate",
            "pull",
            "--stage",
            "primary",
            "--out",
            str(out),
            "--groups",
            str(people.groups_path),
            "--protocol",
            str(people.protocol_path),
            "--root",
            str(people.root),
        ],
    )
    assert r.exit_code == 0, r.output
    rows = read_manifest(out, "annotations").df
    mine = rows[(rows["annotator_id"] == "a1") & (rows["video_id"] == video_id)]
    assert mine["label"].tolist() == [chosen]
    return timing
