"""Real-browser tests of the planners' app: Debian Chromium driven by Playwright (no download).

The app runs as `solara run app.py --production` with the offline asset cache; the tests skip
cleanly when Chromium or the cache is missing. Screenshots go to test-results/.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path(os.environ.get("ELDERCARE_CHROMIUM", "/usr/bin/chromium"))
CACHE = Path(os.environ.get("SOLARA_ASSETS_PROXY_CACHE_DIR", ROOT / ".solara-assets"))
SHOTS = ROOT / "test-results"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
RUN_TIMEOUT_MS = 120_000

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} missing (apt-get install -y chromium)", allow_module_level=True)
if not (CACHE / "@widgetti").is_dir():
    pytest.skip(
        f"Solara asset cache {CACHE} missing (run scripts/prepare_app_assets.sh)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    port = _free_port()
    env = {
        **os.environ,
        "SOLARA_ASSETS_PROXY_CACHE_DIR": str(CACHE),
        "SOLARA_TELEMETRY_MIXPANEL_ENABLE": "False",
        "ELDERCARE_APP_SCALE": os.environ.get("ELDERCARE_TEST_SCALE", "200"),
        "ELDERCARE_APP_REPLICATIONS": "1",
    }
    solara = Path(sys.executable).parent / "solara"
    cmd = [str(solara), "run", "app.py", "--port", str(port), "--host", "127.0.0.1"]
    cmd += ["--no-check-version", "--production"]
    SHOTS.mkdir(exist_ok=True)
    log_path = SHOTS / "solara_server.log"
    log = open(log_path, "w")  # noqa: SIM115
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 90
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.fail(f"solara run did not start; see {log_path}")
        time.sleep(0.5)
    yield url
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    log.close()


@pytest.fixture(scope="module")
def chromium_browser():
    SHOTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


class Watch:
    """Failed requests, console errors and non-local requests of one page."""

    def __init__(self, page):
        self.failed, self.errors, self.remote = [], [], []
        page.on("requestfailed", lambda r: self.failed.append(f"{r.url} {r.failure}"))
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("request", self._request)

    def _request(self, r):
        host = urlparse(r.url).hostname
        if host not in ("127.0.0.1", "localhost", None) and not r.url.startswith("data:"):
            self.remote.append(r.url)

    def assert_clean(self):
        assert self.failed == [], self.failed
        assert self.errors == [], self.errors
        assert self.remote == [], self.remote


def _open(browser, url):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    watch = Watch(page)
    page.goto(url)
    page.wait_for_selector(".run-button", timeout=60_000)
    return context, page, watch


def _kpi(page, kpi: str) -> str:
    return page.locator(f".kpi-{kpi} .kpi-value").inner_text().strip()


def _number(text: str) -> float:
    return float(re.sub(r"[^0-9.\-]", "", text))


def _set_lever_to_min(page, path: str) -> None:
    thumb = page.locator(f".lever-{path.replace('.', '-')} .v-slider__thumb-container")
    thumb.focus()
    page.keyboard.press("Home")


def test_page_loads_offline_without_errors(server, chromium_browser):
    context, page, watch = _open(chromium_browser, server)
    assert "太原市养老服务规划模拟" in page.locator(".app-title").inner_text()
    assert page.locator(".lever").count() >= 8  # the two groups open by default
    page.wait_for_timeout(500)
    page.screenshot(path=str(SHOTS / "app_loaded.png"), full_page=True)
    watch.assert_clean()
    context.close()


def test_run_lever_map_and_language(server, chromium_browser):
    context, page, watch = _open(chromium_browser, server)
    page.click(".run-button")
    page.wait_for_selector(".kpi-beds_medical .kpi-value", timeout=RUN_TIMEOUT_MS)
    plan_beds = _number(_kpi(page, "beds_medical"))
    assert plan_beds > 5000  # the plan builds up to ~6,700 integrated beds
    assert page.locator("path.district").count() == 10
    page.screenshot(path=str(SHOTS / "app_plan_run.png"), full_page=True)

    # no integrated beds added 2016-2020: only the 2015 stock remains
    _set_lever_to_min(page, "policy.medical_beds_added")
    lever_text = page.locator(".lever-policy-medical_beds_added .lever-value")
    sync_api.expect(lever_text).to_contain_text("966")
    page.click(".run-button")
    page.wait_for_function(
        "(old) => { const e = document.querySelector('.kpi-beds_medical .kpi-value');"
        " return e && e.innerText.trim() !== old; }",
        arg=_kpi(page, "beds_medical"),
        timeout=RUN_TIMEOUT_MS,
    )
    assert _number(_kpi(page, "beds_medical")) < 0.5 * plan_beds
    status = page.locator(".kpi-beds_medical .kpi-status").inner_text()
    assert status.strip() == "未达标"
    assert page.locator("path.district").count() == 10

    page.get_by_role("button", name="English").click()
    sync_api.expect(page.locator(".app-title")).to_contain_text("Taiyuan elderly-care")
    sync_api.expect(page.locator(".kpi-beds_medical .kpi-status")).to_have_text("not met")
    sync_api.expect(page.locator("svg.choropleth")).to_contain_text("Xiaodian")
    page.wait_for_timeout(500)
    page.screenshot(path=str(SHOTS / "app_lever_run_english.png"), full_page=True)
    watch.assert_clean()
    context.close()


def test_two_sessions_keep_separate_state(server, chromium_browser):
    ctx_a, page_a, watch_a = _open(chromium_browser, server)
    ctx_b, page_b, watch_b = _open(chromium_browser, server)
    _set_lever_to_min(page_a, "policy.public_beds_added")
    page_a.get_by_role("button", name="English").click()
    sync_api.expect(page_a.locator(".lever-policy-public_beds_added .lever-value")).to_contain_text(
        "4,424"
    )
    sync_api.expect(page_a.locator(".app-title")).to_contain_text("Taiyuan elderly-care")
    page_b.wait_for_timeout(500)
    assert "8,024" in page_b.locator(".lever-policy-public_beds_added .lever-value").inner_text()
    assert "太原市" in page_b.locator(".app-title").inner_text()
    page_a.screenshot(path=str(SHOTS / "app_session_a.png"))
    page_b.screenshot(path=str(SHOTS / "app_session_b.png"))
    watch_a.assert_clean()
    watch_b.assert_clean()
    ctx_a.close()
    ctx_b.close()
