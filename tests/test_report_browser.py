"""`intsim report` in a real browser: Debian's Chromium, headless, through Selenium.

The report of two tiny runs (HDQT and FP) and a tiny sweep is opened from its
file:// URL. Checked: the browser logs no error, every section is there and
visible, the charts have a size and something drawn in them, a click on a
column header sorts the audit table (the first column's order before and
after), the audit's task selector and the settings filter work. Two
screenshots are saved: the top of the page and a run's audit, in
$INTSIM_REPORT_SCREENSHOTS when set (``make test-browser`` keeps them in
benchmarks/results/report_screenshots), else in the test's tmp folder.

Skipped, with the reason, without selenium (``pip install selenium``) or
without /usr/bin/chromium and chromedriver (``apt-get install chromium
chromium-driver``); ``make test-browser`` installs both and runs this file.
"""
import os
import shutil
from pathlib import Path

import pytest

pytest.importorskip("selenium", reason="the browser tests need selenium: pip install selenium "
                                       "(make test-browser installs it)")

from click.testing import CliRunner  # noqa: E402
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402

from intsim.cli.main import main  # noqa: E402

from test_cli_train import FAST, train  # noqa: E402
from test_sweep import tiny_spec  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

pytestmark = pytest.mark.skipif(
    not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)),
    reason=f"the browser tests need {CHROMIUM} and chromedriver: apt-get install chromium "
           "chromium-driver (make test-browser installs them)")

SECTIONS = ["sweep-1", "sweep-1-table", "sweep-1-axis", "sweep-1-pareto", "settings",
            "accuracy", "runs"] + [f"run-{i}{part}" for i in (1, 2, 3)
                                   for part in ("", "-matrix", "-audit", "-cost")]
CHARTS = ["accuracy-cnn-chart", "accuracy-nme-chart", "sweep-1-cnn_avg-chart",
          "sweep-1-sat_pct-chart"]


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """report.html of an HDQT run, an FP run and a sweep of four runs (run-3 .. run-6)."""
    d = tmp_path_factory.mktemp("browser")
    for name, extra in (("hdqt", []), ("fp", ["--arith", "fp"])):
        r = train(["--out", str(d / name), "--threads", "1", *FAST, *extra])
        assert r.exit_code == 0, r.output + r.stderr
    spec = tiny_spec(d, grid="acc_bits = [6, 8]\nseed = [1, 2]\n")
    r = CliRunner().invoke(main, ["sweep", spec, "--out", str(d / "sweep")])
    assert r.exit_code == 0, r.output + r.stderr
    out = d / "report.html"
    r = CliRunner().invoke(main, ["report", str(d / "hdqt"), str(d / "fp"), str(d / "sweep"),
                                  "-o", str(out)])
    assert r.exit_code == 0, r.output + r.stderr
    return out


@pytest.fixture(scope="module")
def browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,900", "--hide-scrollbars"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    yield drv
    drv.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    folder = os.environ.get("INTSIM_REPORT_SCREENSHOTS")
    folder = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def severe(drv):
    return [e for e in drv.get_log("browser") if e.get("level") == "SEVERE"]


def first_column(drv, table_id):
    return drv.execute_script(
        "return Array.from(document.getElementById(arguments[0]).tBodies[0].rows)"
        ".map(r => r.cells[0].textContent)", table_id)


def column_values(drv, table_id, idx):
    return drv.execute_script(
        "return Array.from(document.getElementById(arguments[0]).tBodies[0].rows)"
        ".map(r => parseFloat(r.cells[arguments[1]].getAttribute('data-value')))", table_id, idx)


def test_sections_are_there_and_visible_without_errors(page, browser, shots):
    browser.get(page.as_uri())
    assert browser.title.startswith("intsim report")
    assert severe(browser) == []
    for sid in SECTIONS:
        el = browser.find_element(By.ID, sid)
        assert el.is_displayed(), sid
        assert el.size["height"] > 0, sid
    for cid in CHARTS:                  # charts with a size and a line in them
        chart = browser.find_element(By.CSS_SELECTOR, f"#{cid} svg")
        assert chart.size["width"] > 200 and chart.size["height"] > 150, cid
        assert chart.find_elements(By.CSS_SELECTOR, "path[stroke]"), cid
    heat = browser.find_element(By.CSS_SELECTOR, "#run-1-audit .task-view:not([hidden]) svg")
    assert heat.is_displayed() and len(heat.find_elements(By.CSS_SELECTOR, "rect.cell")) >= 6
    assert browser.find_element(By.CSS_SELECTOR, "#sweep-1-pareto svg circle").is_displayed()
    # every in-page link has its target
    hrefs = browser.execute_script(
        "return Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href'))")
    assert hrefs and all(h.startswith("#") for h in hrefs)
    missing = browser.execute_script(
        "return arguments[0].filter(h => !document.getElementById(h.slice(1)))", hrefs)
    assert missing == []
    browser.execute_script("window.scrollTo(0, 0)")
    path = shots / "report-top.png"
    assert browser.save_screenshot(str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_clicking_a_header_sorts_the_audit_table(page, browser, shots):
    browser.get(page.as_uri())
    table = "run-1-audit-table-all"
    before = first_column(browser, table)
    assert len(before) >= 6 and before != sorted(before, reverse=True)
    head = browser.find_elements(By.CSS_SELECTOR, f"#{table} thead th")
    layer, sat = head[0], [h for h in head if h.text.startswith("sat %")][0]
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", layer)
    layer.click()
    assert first_column(browser, table) == sorted(before, key=str.lower)
    assert layer.get_attribute("aria-sort") == "ascending"
    layer.click()
    after = first_column(browser, table)
    assert after == sorted(before, key=str.lower, reverse=True) and after != before
    assert layer.get_attribute("aria-sort") == "descending"
    sat.click()
    vals = column_values(browser, table, 4)
    assert vals == sorted(vals) and layer.get_attribute("aria-sort") is None
    sat.click()
    vals = column_values(browser, table, 4)
    assert vals == sorted(vals, reverse=True)
    # the cost table sorts the same way; its totals stay below
    cost = browser.find_element(By.CSS_SELECTOR, "#run-1-cost-table thead th:nth-child(4)")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", cost)
    cost.click()
    energy = column_values(browser, "run-1-cost-table", 3)
    assert energy == sorted(energy)
    assert severe(browser) == []
    audit = browser.find_element(By.ID, "run-1-audit")
    browser.execute_script("arguments[0].scrollIntoView()", audit)
    path = shots / "report-audit.png"
    assert audit.screenshot(str(path))
    assert path.stat().st_size > 0


def test_task_selector_and_settings_filter(page, browser):
    browser.get(page.as_uri())
    views = browser.find_elements(By.CSS_SELECTOR, "#run-1-audit .task-view")
    assert [v.is_displayed() for v in views] == [True, False, False, False]
    sel = browser.find_element(By.ID, "run-1-audit-select")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", sel)
    Select(sel).select_by_visible_text("task 2")
    assert [v.is_displayed() for v in views] == [False, False, True, False]
    assert browser.find_element(By.ID, "run-1-audit-table-1").is_displayed()
    rows = browser.find_elements(By.CSS_SELECTOR, "#settings-table tbody tr")
    same = [r for r in rows if r.get_attribute("data-differs") != "1"]
    differ = [r for r in rows if r.get_attribute("data-differs") == "1"]
    assert same and differ and all(r.is_displayed() for r in rows)
    box = browser.find_element(By.ID, "settings-only-differs")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", box)
    box.click()
    assert all(r.is_displayed() for r in differ) and not any(r.is_displayed() for r in same)
    keys = {r.get_attribute("data-key") for r in differ}
    assert {"arith", "acc_bits", "seed", "dataset"} <= keys and "bits" not in keys
    assert severe(browser) == []
