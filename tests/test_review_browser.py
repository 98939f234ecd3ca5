"""`brats-ssl review` in a real browser: headless Chromium (selenium) against a running server on
a tiny trained run, and on a static page opened from disk. Skipped when Chromium is not installed
(failed instead under BRATS_SSL_REQUIRE_BROWSER=1, as .ci/run sets)."""

import json

import numpy as np
import pytest

from brats_ssl.ssl.review_decisions import REVIEW_FILE

from review_helpers import (
    ReviewServer,
    canvas_pixels,
    chromium_or_skip,
    close_chromium,
    greenish,
    ranked_pool,
    wait_for,
    wait_for_viewer,
)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser():
    driver = chromium_or_skip()
    yield driver
    close_chromium(driver)


@pytest.fixture(scope="module")
def server(review_run, browser):
    running = ReviewServer(review_run)
    yield running
    running.stop()


@pytest.fixture(autouse=True)
def no_decisions_yet(review_run):
    (review_run / REVIEW_FILE).unlink(missing_ok=True)
    yield
    (review_run / REVIEW_FILE).unlink(missing_ok=True)


def _by_id(driver, element_id):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element_id)


def _decisions(run) -> dict:
    path = run / REVIEW_FILE
    return {c: e["decision"] for c, e in json.loads(path.read_text()).items()} if path.exists() else {}


def test_index_lists_the_unlabeled_cases_and_sorts(browser, server, review_run):
    from selenium.webdriver.common.by import By

    browser.get(server.url + "/")
    rows = _by_id(browser, "pool").find_elements(By.CSS_SELECTOR, "tbody tr")
    assert [r.find_element(By.TAG_NAME, "a").text for r in rows] == ranked_pool(review_run, "round_1")
    header = [th for th in _by_id(browser, "pool").find_elements(By.TAG_NAME, "th") if th.text.startswith("rank")][0]
    header.click()
    header.click()  # descending
    rows = _by_id(browser, "pool").find_elements(By.CSS_SELECTOR, "tbody tr")
    assert [r.find_element(By.TAG_NAME, "a").text for r in rows] == ranked_pool(review_run, "round_1")[::-1]


def test_case_page_draws_the_scan_in_the_viewer(browser, server, review_run):
    case = ranked_pool(review_run)[0]
    browser.get(f"{server.url}/case/{case}")
    wait_for_viewer(browser)

    def drawn() -> bool:
        pixels = canvas_pixels(browser)
        lit = (pixels.max(-1) > 40).mean()  # the background is black
        return lit > 0.05 and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50

    wait_for(drawn, timeout=20)
    height, width, _ = canvas_pixels(browser).shape
    assert height > 300 and width > 500


def test_ground_truth_is_drawn_in_brats_colours_on_a_labeled_case(browser, server, review_run):
    case = json.loads((review_run / "split.json").read_text())["val"][0]
    browser.get(f"{server.url}/case/{case}")
    wait_for_viewer(browser)
    _by_id(browser, "show-label").click()  # hide the prediction: only the ground truth may be green
    wait_for(lambda: "label.nii.gz" not in _by_id(browser, "viewer-status").text)
    assert wait_for(lambda: greenish(canvas_pixels(browser)) < 20, timeout=20)
    _by_id(browser, "show-truth").click()
    wait_for(lambda: "ground_truth" in _by_id(browser, "viewer-status").text)
    assert wait_for(lambda: greenish(canvas_pixels(browser)) > 100, timeout=20)  # the edema of the synthetic tumour


def test_accept_button_and_keys_write_review_json(browser, server, review_run):
    first, second, _ = ranked_pool(review_run, "round_1")
    browser.get(f"{server.url}/case/{first}")
    wait_for_viewer(browser)
    _by_id(browser, "note").send_keys("clean edema boundary")
    _by_id(browser, "accept").click()
    wait_for(lambda: _decisions(review_run).get(first) == "accept")
    assert json.loads((review_run / REVIEW_FILE).read_text())[first]["note"] == "clean edema boundary"
    assert _by_id(browser, "decision").text == "accept"

    body = browser.find_element("tag name", "body")
    body.send_keys("n")  # next case in the pool's order
    wait_for(lambda: browser.current_url.endswith(f"/case/{second}"))
    wait_for_viewer(browser)
    browser.find_element("tag name", "body").send_keys("r")
    wait_for(lambda: _decisions(review_run) == {first: "accept", second: "reject"})


def test_static_page_draws_from_disk_without_a_server(browser, review_run, tmp_path):
    from brats_ssl.review.static_site import write_static

    out = tmp_path / "static"
    write_static(review_run, out)
    case = ranked_pool(review_run)[0]
    browser.get((out / f"{case}.html").as_uri())
    wait_for_viewer(browser)
    assert wait_for(lambda: (canvas_pixels(browser).max(-1) > 40).mean() > 0.05, timeout=20)
    assert not _by_id(browser, "accept").is_enabled()
