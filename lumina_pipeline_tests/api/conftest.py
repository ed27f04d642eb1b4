"""One catalog of the corpus copy, run through every asset, behind the API's app."""

import os
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import text

from lumina_pipeline.api.app import ApiSettings, create_app
from lumina_pipeline.defs.resources import Embedder
from lumina_pipeline_tests.defs.conftest import Pipeline, pipeline_for_test

CATALOG = "api"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@contextmanager
def chromium(*flags: str, log_requests: bool = False) -> Iterator:
    """Debian's headless chromium driven by selenium (skipped without it, failed under CI)."""
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        reason = "the real-browser tests need Debian's chromium and chromium-driver (.ci/run installs them)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; under CI they must run")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,1000", *flags):
        options.add_argument(flag)
    if log_requests:
        options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


@contextmanager
def serving(app) -> Iterator[str]:
    """`app` on a free loopback port in a thread; yields its base URL."""
    running = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    while not running.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{running.servers[0].sockets[0].getsockname()[1]}"
    running.should_exit = True
    thread.join(timeout=10)


@dataclass(frozen=True)
class Served:
    pipeline: Pipeline
    settings: ApiSettings
    client: TestClient

    def image_id(self, path: str) -> int:
        [(found,)] = self.query("SELECT id FROM images WHERE path = :p AND catalog_id = :c", p=path.encode())
        return found

    def query(self, sql: str, **params) -> list:
        """`sql` run with `params` and `:c`, the catalog's id."""
        with self.pipeline.engine.begin() as connection:
            result = connection.execute(text(sql), {"c": self.pipeline.catalog_id(CATALOG), **params})
            return result.all() if result.returns_rows else []


@pytest.fixture(scope="package")
def served(corpus, database_url, engine, model_cache, tmp_path_factory) -> Served:
    thumbnails = str(tmp_path_factory.mktemp("api-thumbnails"))
    # the real image model: the API's search and similar photos are checked against it
    with pipeline_for_test(database_url, engine, Embedder(cache_dir=model_cache), thumbnails) as pipeline:
        pipeline.add_catalog(CATALOG, str(corpus.photos))
        pipeline.catalog_everything(CATALOG)
        settings = ApiSettings(database_url=database_url, thumbnail_dir=thumbnails, model_cache=model_cache)
        # A loopback name, as without a token the app answers no other (TestClient's is `testserver`).
        with TestClient(create_app(settings), base_url="http://127.0.0.1") as client:
            yield Served(pipeline, settings, client)
