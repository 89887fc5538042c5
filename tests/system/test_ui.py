"""The /ui escalation queue in a real browser: headless Chromium (Debian's `chromium` and
`chromium-driver`) driven by Selenium against the app served by uvicorn on a free port.

Without Chromium the test skips and says how to install it; in CI (CI=true) it fails
instead, so a CI machine without a browser cannot pass by skipping. A screenshot of the
page is kept under the test's tmp folder and copied to var/ui-screenshot.png (ignored)."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from service.api.app import create_app
from service.runtime import load_analyzer
from service.settings import Settings
from tests.conftest import ROOT, skip_or_fail

# A key with only the `conversations` scope: what a wall screen is given.
WALL_KEY = "wall-screen-key-0123456789"
URGENT_TEXT = "There is smoke coming out of the charger you sold me"  # a safety cue: urgent
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
INSTALL_HINT = "install Chromium to run it: apt-get install chromium chromium-driver (and pip install selenium)"


def browser_or_skip() -> None:
    """Skip without a browser, driver or Selenium; in CI, fail instead."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium")
    if missing:
        skip_or_fail(f"the UI test needs {', '.join(missing)}; {INSTALL_HINT}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server_url(tmp_path: Path) -> Iterator[str]:
    """The app with one API key, served by uvicorn in a thread (full analyzer: cues on)."""
    browser_or_skip()
    settings = Settings(
        _env_file=None,
        db_path=tmp_path / "conversations.sqlite3",
        models_dir=ROOT / "models",
        api_keys=f"{WALL_KEY}:conversations",
    )
    app = create_app(settings, load_analyzer(settings))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(30)


@pytest.fixture
def browser() -> Iterator:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,900"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def test_the_queue_asks_for_a_key_then_shows_an_urgent_conversation_live(server_url, browser, tmp_path: Path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    # The page and its assets are open (no data in them); the API behind them is not.
    for path in ("/ui", "/ui/app.js", "/ui/style.css"):
        response = httpx.get(server_url + path, timeout=10)
        assert response.status_code == 200, path
        assert "script-src 'self'" in response.headers["content-security-policy"]
    assert httpx.get(f"{server_url}/ui/ui_routes.py", timeout=10).status_code == 404  # the listed files only
    assert httpx.get(f"{server_url}/v1/conversations", timeout=10).status_code == 401

    wait = WebDriverWait(browser, 60)
    browser.get(f"{server_url}/ui")
    key_input = wait.until(ec.visibility_of_element_located((By.ID, "key-input")))
    key_input.send_keys(WALL_KEY)
    browser.find_element(By.CSS_SELECTOR, "#key-form button[type=submit]").click()
    wait.until(ec.visibility_of_element_located((By.ID, "queue-section")))

    # Posted after the page loaded: the row arrives by polling.
    headers = {"X-API-Key": WALL_KEY}
    for message_id, text in (("m1", "Hi, my new charger arrived yesterday."), ("m2", URGENT_TEXT)):
        response = httpx.post(
            f"{server_url}/v1/conversations/ui-demo-1/messages",
            json={"id": message_id, "role": "customer", "text": text},
            headers=headers,
            timeout=60,
        )
        assert response.status_code == 200, response.text
    level = response.json()["conversation"]["escalation"]["level"]
    assert level in ("escalate", "urgent")

    row = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, 'tr[data-conversation-id="ui-demo-1"]')))
    assert row.find_element(By.CSS_SELECTOR, ".level").text.lower() == level
    assert "ui-demo-1" in row.find_element(By.CSS_SELECTOR, ".conversation-id").text
    assert row.find_elements(By.CSS_SELECTOR, "svg.sparkline polyline"), "a sentiment sparkline"
    assert row.find_elements(By.CSS_SELECTOR, ".reasons li"), "the reasons"
    assert row.get_attribute("tabindex") == "0"  # keyboard users can reach the row

    screenshot = tmp_path / "ui-screenshot.png"
    assert browser.save_screenshot(str(screenshot))
    (ROOT / "var").mkdir(exist_ok=True)
    shutil.copy(screenshot, ROOT / "var" / "ui-screenshot.png")


def test_the_api_docs_render_from_this_server_alone(server_url, browser):
    # Chromium here reaches nothing but the server: a page that needed a CDN would stay blank.
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 60)
    browser.get(f"{server_url}/docs")
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".opblock-summary-path")))
    paths = {element.text for element in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")}
    assert "/v1/analyze" in paths, paths
    browser.get(f"{server_url}/redoc")
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "[data-section-id]")))
    assert "/v1/analyze" in browser.page_source
