"""/docs in a real browser (Debian's chromium, driven by selenium) that cannot reach the
internet: Swagger UI must come from this server, not from a CDN."""

import json
import os
import shutil
import threading
import time
from urllib.parse import urlsplit

import pytest
import uvicorn

from lumina_pipeline.api.app import ApiSettings, create_app
from lumina_pipeline_tests.api.test_review_page import CHROMEDRIVER, CHROMIUM


@pytest.fixture
def offline_browser():
    """Chromium whose every request beyond loopback goes to a proxy that is not there (as on
    a machine without internet), and which logs each request it sends."""
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        reason = "the real-browser test needs Debian's chromium and chromium-driver (.ci/run installs them)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; under CI it must run")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,1000",
                 "--proxy-server=http://127.0.0.1:9"):  # Chromium never sends loopback through a proxy
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    yield driver
    driver.quit()


@pytest.fixture
def server(database_url, model_cache, tmp_path):
    """The API's app on a free loopback port; /docs needs no catalog."""
    settings = ApiSettings(database_url=database_url, thumbnail_dir=str(tmp_path), model_cache=model_cache)
    running = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    while not running.started:
        time.sleep(0.05)
    port = running.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    running.should_exit = True
    thread.join(timeout=10)


def test_docs_lists_the_operations_without_internet(server, offline_browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    offline_browser.get(f"{server}/docs")
    WebDriverWait(offline_browser, 20).until(
        expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, ".opblock-summary-path"))
    )

    shown = {element.text for element in offline_browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")
             if element.is_displayed()}
    assert {"/api/catalogs", "/api/catalogs/{catalog}/search", "/api/groups/{group_id}/decision"} <= shown
    sent = [json.loads(entry["message"])["message"] for entry in offline_browser.get_log("performance")]
    requested = {
        message["params"]["request"]["url"] for message in sent if message["method"] == "Network.requestWillBeSent"
    }
    assert f"{server}/openapi.json" in requested
    assert {urlsplit(url).hostname for url in requested if url.startswith("http")} == {"127.0.0.1"}
