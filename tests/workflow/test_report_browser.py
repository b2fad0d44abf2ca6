"""The report of the smoke run, opened in headless Chromium as a reviewer would.

Snakemake builds results/report.html (``snakemake --report``); Debian's ``chromium``
(workflow/system-packages.txt, installed by workflow/run.sh as root) loads it and
is driven over the DevTools protocol through a pipe (``--remote-debugging-pipe``:
no network port, no browser download, no Python client library). Checked: no
console errors or uncaught exceptions while the report loads and while every
category is opened, the front page's verdict table has one row per claim of the
config, no docutils "System Message" anywhere, every category lists at least one
item. A screenshot of the front page is saved to results/report-front.png (the
one in docs/ is a copy). Skipped, with the reason, where chromium is missing."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, snakemake

pytestmark = pytest.mark.workflow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
]


class Browser:
    """Chromium driven over the DevTools protocol on file descriptors 3 (commands)
    and 4 (replies and events), messages separated by NUL bytes."""

    def __init__(self, exe: str, profile: Path, size=(1600, 1000)):
        cmd_r, self._cmd_w = os.pipe()
        self._out_r, out_w = os.pipe()

        def fds():  # in the child: its fd 3 reads our commands, its fd 4 writes replies
            os.dup2(cmd_r, 3)
            os.dup2(out_w, 4)

        args = [exe, *FLAGS, f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}", "about:blank"]
        self.proc = subprocess.Popen(args, pass_fds=(3, 4), preexec_fn=fds, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(cmd_r)
        os.close(out_w)
        self._buf, self._id, self.events, self.session = b"", 0, [], None

    def _recv(self, timeout: float) -> dict:
        import select

        end = time.monotonic() + timeout
        while b"\0" not in self._buf:
            left = end - time.monotonic()
            if left <= 0 or not select.select([self._out_r], [], [], left)[0]:
                raise TimeoutError("no reply from chromium")
            chunk = os.read(self._out_r, 1 << 20)
            if not chunk:
                raise EOFError("chromium closed the DevTools pipe")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, params: dict | None = None, timeout: float = 60, page: bool = True) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if page and self.session:
            msg["sessionId"] = self.session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._recv(timeout)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def open(self, url: str) -> None:
        target = self.send("Target.createTarget", {"url": "about:blank"}, page=False)["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True}, page=False)["sessionId"]
        for domain in ("Runtime", "Log", "Page"):
            self.send(f"{domain}.enable")
        self.send("Page.navigate", {"url": url})

    def js(self, expression: str):
        r = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expression}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            value = self.js(expression)
            if value:
                return value
            time.sleep(0.25)
        raise TimeoutError(f"never true: {expression}")

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and browser log errors seen so far."""
        out = []
        for e in self.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append("console." + p["type"] + ": " + " ".join(str(a.get("value", a.get("description"))) for a in p.get("args", [])))
            elif m == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                out.append("exception: " + str(d.get("exception", {}).get("description") or d.get("text")))
            elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                out.append("log: " + p["entry"].get("text", ""))
        return out

    def screenshot(self, path: Path) -> None:
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        try:
            self.send("Browser.close", page=False, timeout=10)
        except (RuntimeError, EOFError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._cmd_w)
        os.close(self._out_r)


def smoke_claims(wd: Path) -> list:
    from snakemake.utils import validate

    from compbench import verdicts

    cfg = yaml.safe_load((wd / "config" / "smoke.yaml").read_text())
    validate(cfg, str(wd / "config" / "schema.yaml"), set_default=True)
    return verdicts.collect(cfg)


@pytest.fixture(scope="module")
def report(smoke, tmp_path_factory):
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (Debian package `chromium`; workflow/run.sh installs it when run as root)")
    wd = smoke.workdir
    snakemake(wd, "--configfile", "config/smoke.yaml", "--report", "results/report.html")
    browser = Browser(CHROMIUM, tmp_path_factory.mktemp("chromium-profile"))
    try:
        browser.open((wd / "results" / "report.html").as_uri())
        browser.wait_for("document.querySelector('table.verdicts') !== null")
        yield wd, browser
    finally:
        browser.close()


def test_front_page_has_one_verdict_row_per_claim(report):
    wd, browser = report
    claims = smoke_claims(wd)
    rows = browser.js("[...document.querySelectorAll('table.verdicts tbody tr')].map(r => [...r.cells].map(c => c.innerText.trim()))")
    assert len(rows) == len(claims) > 0
    from compbench.verdicts import WORDS

    for row, claim in zip(rows, claims):
        assert row[4].split(" (")[0] in WORDS, row
        assert claim.link.rsplit("/", 1)[-1] == row[5], row
    text = browser.js("document.body.innerText")
    for field in ("config:", "models:", "machine:", "date:"):
        assert field in text, field
    browser.js("window.scrollTo(0, 0); document.querySelectorAll('*').forEach(e => { e.scrollTop = 0; }); true")
    browser.screenshot(wd / "results" / "report-front.png")
    (ROOT / "results").mkdir(exist_ok=True)
    shutil.copy(wd / "results" / "report-front.png", ROOT / "results" / "report-front.png")


def test_no_system_message_anywhere(report):
    wd, browser = report
    html = (wd / "results" / "report.html").read_text(errors="replace")
    assert "System Message" not in html and "system-message" not in html
    assert "System Message" not in browser.js("document.body.innerText")


def test_every_category_lists_an_item_and_nothing_logs_an_error(report):
    wd, browser = report
    cats = browser.js("Object.keys(categories)")
    assert {"Verdicts", "Pruning", "Vision (PASS)"} <= set(cats), cats
    for cat in cats:
        items = browser.js(f"Object.values(categories[{json.dumps(cat)}]).flat()")
        assert items, cat
        # as a reader does: the results menu, then the category (its list replaces the menu)
        browser.js("app.setView({navbarMode: 'menu'}); true")
        browser.js(f"app.showCategory({json.dumps(cat)}); true")
        listed = browser.wait_for(
            f"(() => {{ const t = document.querySelector('nav').innerText; const items = {json.dumps(items)};"
            " return items.filter(p => t.includes(p)); })()",
            timeout=20,
        )
        assert listed, cat
    assert browser.errors() == []
