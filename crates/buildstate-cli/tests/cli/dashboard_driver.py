"""Drives the dashboard in headless Chromium (selenium + chromedriver, Debian's).

Run by tests/cli/dashboard.rs against a `buildstate serve` on a seeded store:
    python dashboard_driver.py SPEC.json
SPEC has: url, read and write tokens, the expected matrix cells, the failed build, the
running build and the CLI command that moves it, and where screenshots go. Prints one
`CHECK <name> ok` line per check that passed and exits non-zero at the first failure,
with what it saw. Each page's browser log is read after it: any SEVERE entry (a
console error, a script refused by the CSP, a failed load) fails the run.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait


def check(name, ok, seen=""):
    if not ok:
        print(f"FAILED {name}: {seen}", flush=True)
        sys.exit(1)
    print(f"CHECK {name} ok", flush=True)


def browser(profile):
    opts = webdriver.ChromeOptions()
    for arg in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--user-data-dir={profile}", "--window-size=1400,1000"]:
        opts.add_argument(arg)
    opts.binary_location = shutil.which("chromium")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=opts, service=Service(shutil.which("chromedriver")))


def main():
    spec = json.load(open(sys.argv[1]))
    url = spec["url"].rstrip("/")
    shots = spec["screenshots"]
    os.makedirs(shots, exist_ok=True)
    profile = tempfile.mkdtemp(prefix="buildstate-chromium-")
    d = browser(profile)
    # A page's <main> is swapped whole when a change arrives, and a click navigates:
    # an element found a moment ago may be gone, so waits look again.
    wait = WebDriverWait(d, 10, ignored_exceptions=[NoSuchElementException, StaleElementReferenceException])

    def status():
        return d.execute_script("var e = document.getElementById('build-status'); return e ? e.textContent : '';")

    def errors(page, allowed=()):
        bad = [e for e in d.get_log("browser") if e.get("level") == "SEVERE"
               and not any(a in e.get("message", "") for a in allowed)]
        check(f"no console errors on {page}", not bad, bad)

    def shot(name):
        d.save_screenshot(os.path.join(shots, f"{name}.png"))

    def sign_in(token):
        d.get(url + "/signin")
        field = d.find_element(By.ID, "token")
        # By keyboard: type the token, press Enter.
        field.send_keys(token)
        field.send_keys(Keys.ENTER)
        try:
            wait.until(lambda d: d.current_url.rstrip("/") == url)
        except Exception:
            check("signed in", False, d.current_url + " " + d.find_element(By.TAG_NAME, "body").text[:500])

    try:
        # Without a session a page sends people to sign in.
        d.get(url + "/")
        check("unsigned pages go to sign-in", d.current_url.endswith("/signin"), d.current_url)
        shot("signin")
        errors("signin")
        sign_in(spec["read_token"])
        check("signed in with a read token", "Signed in as" in d.page_source, d.page_source[:500])

        # The matrix shows the seeded builds with their milestones and statuses.
        for cell in spec["cells"]:
            el = d.find_element(By.CSS_SELECTOR, f'td[data-build="{cell["build"]}"]')
            seen = (el.get_attribute("data-state"), el.get_attribute("data-status"), el.text)
            check(f"matrix cell {cell['build']}",
                  seen[0] == str(cell["state"]) and seen[1] == cell["status"] and cell["status"] in seen[2]
                  and el.find_element(By.TAG_NAME, "progress").get_attribute("value") == str(cell["state"]),
                  seen)
        shot("matrix")
        errors("the matrix")

        # Clicking a cell opens that build.
        failed = spec["failed"]
        d.find_element(By.CSS_SELECTOR, f'td[data-build="{failed["build"]}"] a').click()
        wait.until(lambda d: d.current_url.endswith(f"/builds/{failed['build']}"))
        check("a cell opens its build", failed["build"] in d.find_element(By.TAG_NAME, "h1").text, d.current_url)
        body = d.find_element(By.TAG_NAME, "main").text
        check("hostile text is shown as text", failed["message"] in body and failed["meta"] in body, body[:800])
        check("no hostile script ran", d.execute_script("return window.__hostile === undefined"))
        check("a read session has no retry button", not d.find_elements(By.ID, "retry"))
        shot("build")
        errors("the build page")

        # The full log of an attempt.
        d.find_element(By.LINK_TEXT, "full log").click()
        check("an attempt's full log", failed["log_text"] in d.find_element(By.TAG_NAME, "body").text,
              d.page_source[:300])
        d.back()

        # A read session's retry is refused (a form sent anyway) and changes nothing.
        d.execute_script("""
            var f = document.createElement('form'); f.method = 'post'; f.action = arguments[0];
            var c = document.createElement('input'); c.type = 'hidden'; c.name = 'csrf';
            c.value = document.querySelector('input[name=csrf]').value; f.appendChild(c);
            document.body.appendChild(f); f.submit();""", f"/builds/{failed['build']}/retry")
        wait.until(lambda d: "Refused" in d.find_element(By.TAG_NAME, "h1").text)
        check("retry refused with a read token", "write scope" in d.page_source, d.page_source[:500])
        errors("the refusal", allowed=("403",))
        d.get(url + f"/builds/{failed['build']}")
        check("the refused retry changed nothing", status().startswith("failed"), status())

        # Live: a transition made with the CLI shows in the open matrix without a reload.
        run = spec["running"]
        d.get(url + "/")
        d.execute_script("window.__still_here = 1")
        sel = f'td[data-build="{run["build"]}"]'
        before = d.find_element(By.CSS_SELECTOR, sel).get_attribute("data-state")
        check("the running build before", before == str(run["from"]), before)
        time.sleep(0.5)  # the events stream is open
        subprocess.run(run["command"], check=True, env=dict(os.environ, **run["env"]), capture_output=True)
        t0 = time.monotonic()
        changed = None
        while time.monotonic() - t0 < 5:
            state = d.execute_script(
                "var c = document.querySelector(arguments[0]); return c && c.getAttribute('data-state');", sel)
            if state == str(run["to"]):
                changed = time.monotonic() - t0
                break
            time.sleep(0.05)
        check("a CLI transition appears live", changed is not None, d.find_element(By.CSS_SELECTOR, sel).text)
        print(f"LIVE {changed:.3f}", flush=True)
        check("the transition appeared within a second", changed < 1.0, f"{changed:.3f} s")
        check("without a reload", d.execute_script("return window.__still_here === 1"))
        shot("matrix-live")
        errors("the live matrix")

        for path, name, expect in [("/attention", "attention", failed["build"]),
                                   ("/running", "running", spec["running_view"]),
                                   ("/reports", "reports", "Success rate by month")]:
            d.get(url + path)
            check(f"the {name} view", expect in d.find_element(By.TAG_NAME, "main").text,
                  d.find_element(By.TAG_NAME, "main").text[:500])
            check(f"the {name} view draws charts or tables",
                  bool(d.find_elements(By.CSS_SELECTOR, "svg.chart, table, p.empty")))
            shot(name)
            errors(f"the {name} view")

        # Retry works with a write token, by keyboard.
        d.find_element(By.CSS_SELECTOR, ".who button").send_keys(Keys.ENTER)
        wait.until(lambda d: d.current_url.endswith("/signin"))
        sign_in(spec["write_token"])
        d.get(url + f"/builds/{failed['build']}")
        d.find_element(By.ID, "retry").send_keys(Keys.ENTER)
        wait.until(lambda d: status().startswith("running"))
        check("retry works with a write token", True)
        shot("build-retried")
        errors("the retried build")
    finally:
        d.quit()
        shutil.rmtree(profile, ignore_errors=True)
    print("DRIVER DONE", flush=True)


if __name__ == "__main__":
    main()
