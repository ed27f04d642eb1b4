"""/docs in a real browser (Debian's chromium, driven by selenium) that cannot reach the
internet: Swagger UI must come from this server, not from a CDN."""

import json
from urllib.parse import urlsplit

import pytest

from lumina_pipeline.api.app import ApiSettings, create_app
from lumina_pipeline_tests.api.conftest import chromium, serving


@pytest.fixture
def offline_browser():
    """Chromium whose every request beyond loopback goes to a proxy that is not there (as on
    a machine without internet), and which logs each request it sends."""
    # Chromium never sends loopback through a proxy
    with chromium("--proxy-server=http://127.0.0.1:9", log_requests=True) as driver:
        yield driver


@pytest.fixture
def server(database_url, model_cache, tmp_path):
    """The API's app on a free loopback port; /docs needs no catalog."""
    settings = ApiSettings(database_url=database_url, thumbnail_dir=str(tmp_path), model_cache=model_cache)
    with serving(create_app(settings)) as url:
        yield url


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
