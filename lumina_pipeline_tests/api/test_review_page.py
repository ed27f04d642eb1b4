"""The review page in a real browser (Debian's chromium, driven by selenium): two groups
decided with the keyboard, the decisions found in the database."""

import re
import time
import uuid

import pytest

from lumina_pipeline_tests.api.conftest import CATALOG, chromium, serving


@pytest.fixture
def browser():
    with chromium() as driver:
        yield driver


@pytest.fixture
def server(served):
    with serving(served.client.app) as url:
        yield url


def shown_group(driver) -> uuid.UUID:
    return uuid.UUID(driver.current_url.rsplit("/", 1)[-1])


def wait_for_new_page(driver, previous_url: str) -> None:
    deadline = time.monotonic() + 15
    while driver.current_url == previous_url and time.monotonic() < deadline:
        time.sleep(0.1)
    assert driver.current_url != previous_url, "the page did not move on"


def test_two_groups_are_decided_with_the_keyboard(served, server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.get(f"{server}/review/{CATALOG}/groups")
    first = shown_group(browser)
    cards = browser.find_elements(By.CSS_SELECTOR, ".card")
    second_card = int(cards[1].get_attribute("data-image-id"))
    assert "reviewed" in browser.find_element(By.ID, "progress").text
    thumbnails = browser.find_elements(By.CSS_SELECTOR, ".card img")
    assert len(thumbnails) == len(cards) >= 2
    assert all(
        browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", t) for t in thumbnails
    )
    assert all(t.is_displayed() and t.size["height"] >= 150 for t in thumbnails)  # shown, not just loaded
    for card in cards:  # what a person chooses by, on every card
        assert " × " in card.text and re.search(r" · [\d.]+ (KB|MB)", card.text) and "quality" in card.text

    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys("2")
    assert "keeper" in cards[1].get_attribute("class") and "keeper" not in cards[0].get_attribute("class")
    url = browser.current_url
    body.send_keys(Keys.ENTER)
    wait_for_new_page(browser, url)

    second = shown_group(browser)
    kept = int(browser.find_element(By.CSS_SELECTOR, ".card.keeper").get_attribute("data-image-id"))
    url = browser.current_url
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ENTER)
    wait_for_new_page(browser, url)

    decided = dict((group, (primary, reviewed, chosen)) for group, primary, reviewed, chosen in served.query(
        "SELECT id, primary_image_id, reviewed, primary_chosen FROM duplicate_groups WHERE id IN (:a, :b)",
        a=first, b=second))
    assert first != second
    assert decided[first] == (second_card, True, True)
    assert decided[second] == (kept, True, True)


def test_a_live_photo_card_plays_its_clip_under_the_pointer(served, server, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    still = served.client.get(f"/api/images/{served.image_id('Phone/2022/IMG_0002.HEIC')}").json()
    browser.get(f"{server}/review/{CATALOG}/groups/{still['group']['group_id']}")
    cards = browser.find_elements(By.CSS_SELECTOR, ".card")
    assert [card.find_element(By.CSS_SELECTOR, ".stack").text for card in cards] == ["LIVE", "LIVE"]
    clip = cards[0].find_element(By.CSS_SELECTOR, "video.clip")
    assert not clip.is_displayed()
    ActionChains(browser).move_to_element(cards[0]).perform()
    deadline = time.monotonic() + 10
    while browser.execute_script("return arguments[0].currentTime", clip) == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    playing = browser.execute_script("return !arguments[0].paused && arguments[0].currentTime > 0", clip)
    assert clip.is_displayed() and playing


def test_keep_several_and_keep_all_with_the_keyboard(served, server, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    fuji = served.client.get(f"/api/images/{served.image_id('exif.org samples/fujifilm-dx10.jpg')}").json()["group"]
    browser.get(f"{server}/review/{CATALOG}/groups/{fuji['group_id']}")
    assert "keep that one too" in browser.find_element(By.CLASS_NAME, "keys").text
    cards = browser.find_elements(By.CSS_SELECTOR, ".card")
    ActionChains(browser).key_down(Keys.SHIFT).send_keys("3").key_up(Keys.SHIFT).perform()
    assert "also" in cards[2].get_attribute("class")
    assert cards[2].find_element(By.CLASS_NAME, "also-badge").is_displayed()
    keeper, also = (int(cards[i].get_attribute("data-image-id")) for i in (0, 2))
    url = browser.current_url
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ENTER)
    wait_for_new_page(browser, url)
    kept = served.query("SELECT id FROM images WHERE kept AND id IN (SELECT image_id FROM duplicate_members "
                        "WHERE group_id = :g)", g=fuji["group_id"])
    assert [row[0] for row in kept] == [also]
    assert served.query("SELECT reviewed, primary_image_id FROM duplicate_groups WHERE id = :g",
                        g=fuji["group_id"]) == [(True, keeper)]

    ricoh = served.client.get(f"/api/images/{served.image_id('exif.org samples/ricoh-rdc5300.jpg')}").json()["group"]
    browser.get(f"{server}/review/{CATALOG}/groups/{ricoh['group_id']}")
    url = browser.current_url
    browser.find_element(By.TAG_NAME, "body").send_keys("a")
    wait_for_new_page(browser, url)
    members = served.query("SELECT i.kept FROM duplicate_members m JOIN images i ON i.id = m.image_id "
                           "WHERE m.group_id = :g", g=ricoh["group_id"])
    assert len(members) >= 2 and all(kept for (kept,) in members)


def test_bulk_accept_takes_only_the_groups_it_counted_and_ctrl_a_decides_nothing(served, server, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.expected_conditions import alert_is_present
    from selenium.webdriver.support.ui import WebDriverWait

    waiting = [str(g) for (g,) in served.query("SELECT id FROM duplicate_groups WHERE catalog_id = :c AND NOT reviewed "
                                              "ORDER BY id")]
    assert len(waiting) >= 2
    browser.get(f"{server}/review/{CATALOG}/groups/{waiting[0]}")
    url = browser.current_url
    ActionChains(browser).key_down(Keys.CONTROL).send_keys("a").key_up(Keys.CONTROL).perform()  # select all
    time.sleep(0.5)
    assert browser.current_url == url and not reviewed(served, waiting)

    confidence = browser.find_element(By.NAME, "min_confidence")
    confidence.clear()
    confidence.send_keys("0")
    browser.find_element(By.CSS_SELECTOR, "button[data-query^='groups=alike']").click()
    question = WebDriverWait(browser, 10).until(alert_is_present())
    assert question.text.startswith(f"Mark {len(waiting)} groups reviewed")
    served.query("UPDATE duplicate_groups SET reviewed = true WHERE id = :g", g=waiting[-1])  # meanwhile, elsewhere
    question.accept()
    refusal = WebDriverWait(browser, 10).until(alert_is_present())
    assert "changed since they were counted" in refusal.text
    refusal.accept()
    assert reviewed(served, waiting) == {waiting[-1]}  # the count shown was not taken for the groups now waiting

    served.query("UPDATE duplicate_groups SET reviewed = false WHERE id = :g", g=waiting[-1])
    assert served.client.get(f"/review/{CATALOG}/groups/{waiting[0]}").headers["cache-control"] == "no-store"


def reviewed(served, groups: list[str]) -> set[str]:
    rows = served.query("SELECT id FROM duplicate_groups WHERE reviewed AND id = ANY(CAST(:g AS uuid[]))", g=groups)
    return {str(group) for (group,) in rows}


def test_skipping_the_last_group_waiting_does_not_say_all_are_reviewed(served):
    waiting = [str(g) for (g,) in served.query("SELECT id FROM duplicate_groups WHERE catalog_id = :c AND NOT reviewed "
                                              "ORDER BY id")]
    total = len(served.query("SELECT id FROM duplicate_groups WHERE catalog_id = :c"))
    served.query("UPDATE duplicate_groups SET reviewed = true WHERE id = ANY(CAST(:g AS uuid[]))", g=waiting[1:])
    try:
        skipped = served.client.get(f"/review/{CATALOG}/groups", params={"after": waiting[0]}).text
    finally:
        served.query("UPDATE duplicate_groups SET reviewed = false WHERE id = ANY(CAST(:g AS uuid[]))", g=waiting[1:])
    assert f"{total - 1} of {total} groups reviewed" in skipped and "All " not in skipped


def test_a_review_address_that_is_not_one_answers_a_page_and_the_api_json(served):
    client, gone = served.client, uuid.uuid4()
    for address, status in [(f"/review/{CATALOG}/groups/{gone}", 404), (f"/review/{CATALOG}/stacks", 422),
                            ("/review/no-such-catalog/groups", 404)]:
        refused = client.get(address)
        assert refused.status_code == status and refused.headers["content-type"].startswith("text/html"), address
        assert "Back to the catalogs" in refused.text, address
    assert client.get(f"/api/groups/{gone}").json()["detail"]  # the API stays JSON
