"""The leaderboard site in a real browser: Debian's headless Chromium (driven by selenium through Debian's
chromedriver) opens the site built from real lm-eval outputs of the default model (and a tiny one), and the
test checks the DOM after the page's JavaScript ran: the tables, the models, the languages and the numbers of
the results files; clicking a header sorts the rows, clicking it again reverses them; the filter box hides rows.
A screenshot of the index page is saved to out/site-screenshot.png for a human to look at.

Skips, with the reason, only where Chromium or its driver is not installed (scripts/setup installs them with
apt; without root or apt it cannot); CI sets MEDEVAL_REQUIRE_BROWSER=1, which turns that skip into a failure."""
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

import leaderboard_runs as lr
from results.render import number

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOT = ROOT / "out" / "site-screenshot.png"
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
# The network is closed: nothing in the browser may try to reach it (updates, sync, QUIC, first-run pages).
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1400,1000")


def _missing() -> str:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install 'medeval[dev]')"
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not path.exists():
            return f"{path} not found: install Debian's {package} (scripts/setup does it with apt when run as root)"
    return ""


@pytest.fixture(scope="module")
def browser():
    reason = _missing()
    if reason:
        if os.environ.get("MEDEVAL_REQUIRE_BROWSER") == "1":
            pytest.fail(f"MEDEVAL_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="medeval-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def built(default_model, tiny_llama, shared_data, tmp_path_factory):
    return lr.site(default_model, tiny_llama, shared_data, tmp_path_factory)


def _labels(table) -> list[str]:
    """The row headers of the visible body rows, in order."""
    rows = table.find_elements("css selector", "tbody tr")
    return [row.find_element("css selector", "th[scope=row]").text for row in rows if row.is_displayed()]


def _cells(table, header: str) -> dict[str, str]:
    """{row label: the text of its cell under `header`} of the visible body rows."""
    from selenium.webdriver.common.by import By

    headers = [th.text.strip() for th in table.find_elements(By.CSS_SELECTOR, "thead th")]
    index = headers.index(header)
    rows = table.find_elements(By.CSS_SELECTOR, "tbody tr")
    return {row.find_element(By.CSS_SELECTOR, "th[scope=row]").text:
            row.find_elements(By.CSS_SELECTOR, "th, td")[index].text for row in rows}


def test_site_in_chromium(browser, built):
    from selenium.webdriver.common.by import By

    index = (built["site"] / "index.html").resolve()
    browser.get(index.as_uri())
    assert browser.title == "Medical QA leaderboard"
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)  # the page as a reader first sees it, whole
    browser.set_window_size(1400, min(browser.execute_script("return document.body.scrollHeight") + 40, 6000))
    assert browser.save_screenshot(str(SCREENSHOT)) and SCREENSHOT.stat().st_size > 10_000
    tables = browser.find_elements(By.CSS_SELECTOR, "table.board")
    assert [t.get_attribute("id") for t in tables] == [f"summary-{m}" for m in ("acc", "strict_acc", "ece", "brier")]

    brier = browser.find_element(By.ID, "summary-brier")
    assert brier.find_element(By.TAG_NAME, "caption").text.startswith("medeval leaderboard: brier")
    headers = [th.text.strip() for th in brier.find_elements(By.CSS_SELECTOR, "thead th")]
    assert {"English", "Spanish", "Average"} <= set(headers)
    default_name = json.loads((built["bundle"] / "submission.json").read_text())["model"]["name"]
    tiny_name = Path(lr.results_of(built["tiny"]["folders"][0])["config"]["model_args"]["pretrained"]).name
    english = _cells(brier, "English")
    assert set(english) == {default_name, tiny_name}
    expected = {default_name: lr.expected_cell(built["default"]["folders"], lr.TASKS, "brier"),
                tiny_name: lr.expected_cell(built["tiny"]["folders"], lr.TASKS, "brier")}
    assert expected[default_name] != expected[tiny_name]
    for name, value in expected.items():
        assert english[name].startswith(number(value))

    # the script turned every header into a button; a click sorts by that column, a second click reverses
    button = brier.find_element(By.XPATH, ".//thead//th[normalize-space()='English']/button")
    header = button.find_element(By.XPATH, "..")
    button.click()
    ascending = sorted(expected, key=expected.get)  # brier: lower is better, so ascending first
    assert _labels(brier) == ascending and header.get_attribute("aria-sort") == "ascending"
    button.click()
    assert _labels(brier) == ascending[::-1] and header.get_attribute("aria-sort") == "descending"
    model_button = brier.find_element(By.XPATH, ".//thead//th[normalize-space()='Model']/button")
    model_button.click()
    assert _labels(brier) == sorted(expected, key=str.lower)

    # the filter box (hidden without JavaScript) hides the rows that do not match
    acc = browser.find_element(By.ID, "summary-acc")
    box = browser.find_element(By.CSS_SELECTOR, "input[data-filter='summary-acc']")
    assert box.is_displayed()
    box.send_keys(tiny_name)
    assert _labels(acc) == [tiny_name]
    box.clear()
    box.send_keys(" ")  # an "input" event with nothing to match: every row again
    assert sorted(_labels(acc)) == sorted(expected)

    # a model page: the provenance table, and its figures load
    browser.find_element(By.LINK_TEXT, default_name).click()
    assert browser.current_url.endswith(f"models/{default_name}.html")
    provenance = browser.find_element(By.ID, "provenance")
    assert len(provenance.find_elements(By.CSS_SELECTOR, "tbody tr")) == len(lr.TASKS) * len(lr.SEEDS)
    images = browser.find_elements(By.TAG_NAME, "img")
    assert images and all(browser.execute_script("return arguments[0].naturalWidth", img) > 0 for img in images)


def test_without_chromium_the_skip_says_what_to_install(monkeypatch):
    pytest.importorskip("selenium", reason="the reason about selenium itself comes first without it")
    monkeypatch.setattr(sys.modules[__name__], "CHROMIUM", Path("/nonexistent/chromium"))
    assert _missing() == ("/nonexistent/chromium not found: install Debian's chromium (scripts/setup does it with "
                          "apt when run as root)")
    monkeypatch.setattr(sys.modules[__name__], "CHROMIUM", Path(sys.executable))  # any file that exists
    monkeypatch.setattr(sys.modules[__name__], "CHROMEDRIVER", Path("/nonexistent/chromedriver"))
    assert "install Debian's chromium-driver" in _missing()
