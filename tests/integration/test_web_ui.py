"""The Web UI: its files over real HTTP, and its pages in a real headless Chromium (selenium),
against a real embedded cluster.

The browser tests need Debian's ``chromium`` and ``chromium-driver`` packages (scripts/run-tests.sh
installs them) and ``selenium`` (the ``test`` extra). Without them they skip, naming the packages;
with ``CI=true`` they fail instead. Set ``PYFLOW_WEBUI_SCREENSHOTS=<dir>`` to keep a screenshot of
each page the tests look at.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from pyflow.rest.webui import WEBUI_DIR

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
#: without these, Chromium on a machine without network stalls on its background services
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-crash-reporter", "--window-size=1400,1000")
WAIT_S = 20.0
JOB_NAME = "web ui <i>unbounded</i> & co"
OPERATOR_NAME = "Tag <b>events</b>"
FAILURE_TEXT = "seven <b>is</b> not welcome here (web ui test)"


# ---- HTTP ----------------------------------------------------------------------------------------

def fetch(address: str, path: str) -> tuple[int, dict[str, str], bytes]:
    host, port = address.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=15)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def rest_json(address: str, path: str) -> Any:
    status, _, body = fetch(address, path)
    assert status == 200, (path, body)
    return json.loads(body)


def test_page_and_assets_have_their_content_types_and_cache_control(cluster):
    rest = cluster.jobmanager.rest_address
    status, headers, body = fetch(rest, "/")
    assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
    assert headers["cache-control"] == "no-cache"
    assert "script-src 'self'" in headers["content-security-policy"]
    page = body.decode()
    assert fetch(rest, "/v1/")[2] == body
    # the dashboard's features say what this UI has: cancelling, no job submission, rescaling or history
    assert rest_json(rest, "/config")["features"] == {"web-submit": False, "web-cancel": True, "web-rescale": False,
                                                      "web-history": False}

    assets = dict(re.findall(r'web/([\w.-]+)\?v=(\w+)"', page))
    # every file of the package folder but the page itself is named, with its hash
    assert set(assets) == {p.name for p in WEBUI_DIR.iterdir() if p.name != "index.html"}
    types = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
    for name, version in assets.items():
        status, headers, content = fetch(rest, f"/web/{name}?v={version}")
        assert status == 200 and content == (WEBUI_DIR / name).read_bytes(), name
        assert headers["content-type"] == types[Path(name).suffix], name
        assert headers["cache-control"] == "public, max-age=31536000, immutable", name
        assert headers["x-content-type-options"] == "nosniff", name
        # without its current hash (an old page, a hand-typed URL) the answer is revalidated
        status, headers, _ = fetch(rest, f"/v1/web/{name}?v=0")
        assert (status, headers["cache-control"]) == (200, "no-cache"), name


@pytest.mark.parametrize("path", [
    "/web/../setup.cfg", "/web/../../pyflow/rest/webui.py", "/web/..%2Fwebui.py", "/web/%2e%2e%2fhandlers.py",
    "/web/..", "/web/%2e%2e", "/web//etc/passwd", "/web/%2Fetc%2Fpasswd", "/web/", "/web/index.html",
    "/web/nosuchfile.js", "/v1/web/..%2F..%2F..%2Fsetup.cfg"])
def test_no_path_leaves_the_ui_folder(cluster, path):
    status, headers, body = fetch(cluster.jobmanager.rest_address, path)
    assert status == 404, path
    assert headers["content-type"].startswith("application/json")
    assert list(json.loads(body)) == ["errors"]


# ---- the browser ---------------------------------------------------------------------------------

def _require_browser() -> None:
    missing = [f"{package} ({path})" for package, path in (("chromium", CHROMIUM), ("chromium-driver", CHROMEDRIVER))
               if not os.access(path, os.X_OK)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip install -e '.[test]')")
    if missing:
        reason = (f"the Web UI browser tests need Debian's chromium and chromium-driver packages and selenium "
                  f"(apt-get install chromium chromium-driver; scripts/run-tests.sh installs them); missing: "
                  f"{', '.join(missing)}")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)


def _browser_processes(driver_pid: int, marker: str) -> list[psutil.Process]:
    """The driver, its descendants, and processes Chromium detached (its crash handler) that name
    this browser's own folder."""
    procs = {driver_pid: psutil.Process(driver_pid)}
    procs.update((p.pid, p) for p in procs[driver_pid].children(recursive=True))
    for p in psutil.process_iter(["cmdline"]):
        if any(marker in arg for arg in p.info["cmdline"] or ()):
            procs.setdefault(p.pid, p)
    return list(procs.values())


def _alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Chromium through chromedriver; stopped by pid afterwards, none of them left."""
    _require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    home = tmp_path_factory.mktemp("chromium")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={home / 'profile'}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # an explicit driver: Selenium Manager never looks for (or downloads) one; Chromium's crash
    # handler keeps its files in this folder, not in the user's home
    service = Service(CHROMEDRIVER, env={**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / "config"),
                                         "XDG_CACHE_HOME": str(home / "cache")})
    driver = webdriver.Chrome(service=service, options=options)
    try:
        yield driver
    finally:
        procs = _browser_processes(service.process.pid, str(home))
        driver.quit()
        deadline = time.monotonic() + 10
        while _alive(procs) and time.monotonic() < deadline:
            time.sleep(0.1)
        for p in _alive(procs):
            p.kill()
        psutil.wait_procs(_alive(procs), timeout=5)
        assert not _alive(procs), f"browser processes left: {_alive(procs)}"


def wait_until(driver, condition, what: str, detail=None):
    """``condition(driver)`` once it is true (``driver`` may be None for a condition on anything
    else); on a timeout, ``detail()`` says what was seen instead."""
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, WAIT_S, poll_frequency=0.1,
                             ignored_exceptions=(StaleElementReferenceException,)).until(condition)
    except TimeoutException:
        raise AssertionError(f"timed out after {WAIT_S}s waiting for {what}"
                             + (f"; {detail()}" if detail else "")) from None


def element(driver, css: str):
    from selenium.webdriver.common.by import By

    return wait_until(driver, lambda d: (d.find_elements(By.CSS_SELECTOR, css) or [None])[0], css)


def texts(driver, css: str) -> list[str]:
    from selenium.webdriver.common.by import By

    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, css)]


def click(driver, css: str) -> None:
    from selenium.common.exceptions import StaleElementReferenceException

    def clicked(d) -> bool:
        try:
            element(d, css).click()
            return True
        except StaleElementReferenceException:
            return False

    wait_until(driver, clicked, f"a click on {css}")


def screenshot(driver, name: str) -> None:
    folder = os.environ.get("PYFLOW_WEBUI_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(folder) / f"webui-{name}.png"))


def assert_no_console_errors(driver) -> None:
    """No script error, CSP violation or failed request, but for 404s: endpoints that this cluster
    does not serve show as "not available" in the page, and Chromium logs their 404s."""
    errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"
              and "the server responded with a status of 404" not in e["message"]]
    assert errors == []


@pytest.fixture
def unbounded_job(cluster):
    env = cluster.environment()
    (env.from_generator(lambda i: i, rate=200).rebalance()
     .map(lambda x: x).name(OPERATOR_NAME).filter(lambda x: False).name("Drop all").print())
    client = env.execute_async(JOB_NAME)
    rest = cluster.jobmanager.rest_address
    wait_until(None, lambda _: rest_json(rest, f"/jobs/{client.job_id}")["status-counts"]["RUNNING"] == 2,
               "the job to run")
    yield client
    if rest_json(rest, f"/jobs/{client.job_id}")["state"] not in ("CANCELED", "FAILED", "FINISHED"):
        client.cancel()


def test_overview_job_graph_and_cancel(cluster, browser, unbounded_job):
    from selenium.webdriver.common.by import By

    rest = cluster.jobmanager.rest_address
    jid = unbounded_job.job_id
    browser.get(f"http://{rest}/")
    link = element(browser, f"#running-jobs a.job-link[data-jid='{jid}']")
    assert link.text == JOB_NAME  # shown as text, not as markup
    assert int(element(browser, "#stat-jobs-running .stat-value").text) >= 1
    assert int(element(browser, "#stat-taskmanagers .stat-value").text) >= 1
    screenshot(browser, "overview")
    link.click()

    # the graph: one box per chain with its operators' names, edges with their ship strategy
    assert element(browser, "#job-name").text == JOB_NAME
    plan = rest_json(rest, f"/jobs/{jid}/plan")["plan"]
    operators = [name for node in plan["nodes"] for name in node["operators"]]
    assert OPERATOR_NAME in operators and "Drop all" in operators
    wait_until(browser, lambda d: set(operators) <= set(texts(d, "svg.job-graph text.operator")),
               f"the operators {operators} in the graph")
    assert browser.find_elements(By.CSS_SELECTOR, "svg.job-graph b") == []
    strategies = {i["ship_strategy"] for node in plan["nodes"] for i in node["inputs"]}
    assert strategies and strategies <= set(texts(browser, "svg.job-graph g.edge text"))
    assert len(browser.find_elements(By.CSS_SELECTOR, "svg.job-graph g.vertex")) == len(plan["nodes"])
    for box in browser.find_elements(By.CSS_SELECTOR, "svg.job-graph g.vertex"):
        # the level of Flink's backpressure endpoint, or "not available" where it is not served
        assert re.search(r"Backpressure\s+(OK|LOW|HIGH|not available)", box.text), box.text
    # records flow: the source's box shows a count of records out greater than 0
    source = plan["nodes"][0]["id"]
    wait_until(browser, lambda d: re.search(r"/ [1-9]", d.find_element(
        By.CSS_SELECTOR, f"g.vertex[data-vertex-id='{source}']").text), "records out of the source")

    # the subtasks of the selected vertex (the source): TaskManager and slot of each
    (subtask,) = rest_json(rest, f"/jobs/{jid}/vertices/{source}")["subtasks"]
    row = wait_until(browser, lambda d: texts(d, "#subtasks tbody tr"), "the subtasks table")[0]
    assert subtask["taskmanager-id"] in row and "RUNNING" in row
    slot = wait_until(browser, lambda d: d.find_element(By.CSS_SELECTOR, "#subtasks tbody td:nth-child(4)").text,
                      "the slot")
    assert re.fullmatch(r"\d+", slot), slot
    screenshot(browser, "job")

    click(browser, "a.tab[data-tab='config']")
    element(browser, "#job-config")
    click(browser, "a.tab[data-tab='checkpoints']")
    wait_until(browser, lambda d: texts(d, ".tab-content[data-tab='checkpoints'] .unavailable")
               or texts(d, "#checkpoint-history"), "checkpoint statistics or 'not available'")

    # cancel, through the confirmation
    click(browser, "#cancel-job")
    dialog = element(browser, "dialog#confirm[open]")
    assert jid in dialog.text and JOB_NAME in dialog.text
    click(browser, "#confirm-yes")
    wait_until(browser, lambda d: element(d, "#job-state").text == "CANCELED", "the job to show CANCELED",
               detail=lambda: f"the page shows {texts(browser, '#job-state')} {texts(browser, '#banner')}, "
                              f"GET /jobs/:jobid says {rest_json(rest, f'/jobs/{jid}')['state']}: "
                              f"{rest_json(rest, f'/jobs/{jid}/exceptions')['root-exception']}")
    assert rest_json(rest, f"/jobs/{jid}")["state"] == "CANCELED"
    assert browser.find_elements(By.CSS_SELECTOR, "#cancel-job") == []
    assert_no_console_errors(browser)


def test_taskmanagers_page_lists_the_taskmanagers(cluster, browser):
    rest = cluster.jobmanager.rest_address
    ids = [tm["id"] for tm in rest_json(rest, "/taskmanagers")["taskmanagers"]]
    assert ids
    browser.get(f"http://{rest}/#/taskmanagers")
    for tmid in ids:
        element(browser, f"#taskmanagers a.tm-link[data-tmid='{tmid}']")
    screenshot(browser, "taskmanagers")
    click(browser, f"a.tm-link[data-tmid='{ids[0]}']")
    wait_until(browser, lambda d: f"TaskManager {ids[0]}" in texts(d, "h2"), "the TaskManager page")
    # its logs: the list of files, or "not available" where this cluster does not serve them
    element(browser, "table.logs, p.unavailable")
    screenshot(browser, "taskmanager")
    assert_no_console_errors(browser)


def fail_on_seven(x: int) -> int:
    if x == 7:
        raise ValueError(FAILURE_TEXT)
    return x


def test_exceptions_tab_shows_the_users_traceback(cluster, browser):
    from selenium.webdriver.common.by import By

    env = cluster.environment()
    env.from_collection(list(range(20))).map(fail_on_seven).print()
    client = env.execute_async("web ui failing")
    with pytest.raises(Exception):
        client.get_job_execution_result(timeout=30)
    rest = cluster.jobmanager.rest_address
    browser.get(f"http://{rest}/#/jobs/{client.job_id}/exceptions")
    trace = wait_until(browser, lambda d: "\n".join(texts(d, "pre.trace")), "the traceback")
    assert FAILURE_TEXT in trace and "fail_on_seven" in trace and "ValueError" in trace
    assert browser.find_elements(By.CSS_SELECTOR, "pre.trace b") == []  # text, not markup
    assert element(browser, "#job-state").text == "FAILED"
    assert browser.find_elements(By.CSS_SELECTOR, "#cancel-job") == []
    screenshot(browser, "exceptions")
    assert_no_console_errors(browser)


def test_jobmanager_page_shows_configuration_and_logs(cluster, browser):
    from selenium.webdriver.common.by import By

    rest = cluster.jobmanager.rest_address
    browser.get(f"http://{rest}/#/jobmanager")
    wait_until(browser, lambda d: "heartbeat.interval" in "\n".join(texts(d, "#jobmanager-config")),
               "the JobManager configuration")
    click(browser, "a.tab[data-tab='logs']")
    element(browser, "table.logs, p.unavailable")
    screenshot(browser, "jobmanager")
    if browser.find_elements(By.CSS_SELECTOR, "table.logs a.log-link"):
        # the newest file (the one this JobManager writes) opens as text, scrolled to its end
        name = element(browser, "table.logs a.log-link").text
        click(browser, "table.logs a.log-link")
        wait_until(browser, lambda d: f"Log {name}" in texts(d, "h2"), f"the log file {name}")
        assert element(browser, "#log-text").text.strip()
        screenshot(browser, "jobmanager-log")
    assert_no_console_errors(browser)
