"""Issue 15 item 9: an HTML report is safe to open.  A run whose URL, header values,
plan name and the target's responses hold `<script>alert(1)</script>` and
`"><img src=x onerror=alert(1)>` (spelled without spaces where a URL forbids them):
the report shows them as text, and headless Chromium, driven over the DevTools
pipe, sees no dialog, no script error and no console error, and finds no element
the strings would have made."""
import json
import socket
import threading

import pytest

from tests.helpers import run_surge
from tests.support.record_har import DevTools

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
IMG_NO_SPACES = '"><img/src=x/onerror=alert(1)>'     # what a URL can carry (no whitespace)
REPORT_SCRIPTS = 4          # the report's own <script> elements (html.py): error hook, plotly, data, render


class HostileTarget:
    """Answers every request with the two strings in its reason phrase, a header and its body."""

    RESPONSE = (f"HTTP/1.1 200 {SCRIPT}\r\nX-Evil: {IMG}\r\nContent-Type: text/html\r\n"
                f"Content-Length: {len(SCRIPT + IMG)}\r\n\r\n{SCRIPT}{IMG}").encode()

    def __enter__(self):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(5)
        self.listener.close()

    def _accept(self):
        while not self.stop.is_set():
            try:
                sock, _ = self.listener.accept()
            except OSError:
                continue
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock):
        sock.settimeout(0.05)
        buffer = b""
        with sock:
            while not self.stop.is_set():
                try:
                    data = sock.recv(65536)
                except socket.timeout:
                    continue
                except OSError:
                    return
                if not data:
                    return
                buffer += data
                while b"\r\n\r\n" in buffer:
                    _, _, buffer = buffer.partition(b"\r\n\r\n")
                    sock.sendall(self.RESPONSE)


def open_in_chromium(binary, path, profile, timeout_s=60.0) -> dict:
    """Load `path` over the DevTools pipe; dismiss and count any dialog; return
    dialogs, exceptions, console errors and what the page's DOM holds."""
    import time
    devtools = DevTools(binary, str(profile))
    try:
        target = devtools.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = devtools.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            devtools.call(f"{domain}.enable", {}, session)
        devtools.call("Page.navigate", {"url": path.resolve().as_uri()}, session)
        dialogs, loaded = [], False
        deadline = time.monotonic() + timeout_s
        seen = 0
        while not loaded:
            event = devtools.wait_for_any(deadline)
            if event.get("method") == "Page.javascriptDialogOpening":
                dialogs.append(event["params"].get("message"))
                devtools.call("Page.handleJavaScriptDialog", {"accept": True}, session)
            loaded = any(e.get("method") == "Page.loadEventFired" for e in devtools.events[seen:])
        # charts draw after load: wait until the report's status element says it is done
        for _ in range(100):
            done = devtools.call("Runtime.evaluate", {"expression": "(function(s){return s.dataset.rendered || "
                                 "s.dataset.errors || ''})(document.getElementById('surge-render-status'))",
                                 "returnByValue": True}, session)
            if done["result"].get("value"):
                break
            time.sleep(0.2)
        facts = {}
        for name, expression in {
            "text": "document.body.innerText",
            "scripts": "document.querySelectorAll('script').length",
            "imgs": "document.querySelectorAll('img[src=\"x\"], img[onerror]').length",
            "status": "JSON.stringify(Object.assign({}, document.getElementById('surge-render-status').dataset))",
        }.items():
            facts[name] = devtools.call("Runtime.evaluate", {"expression": expression, "returnByValue": True},
                                        session)["result"].get("value")
        events = devtools.events
        dialogs += [e["params"].get("message") for e in events if e.get("method") == "Page.javascriptDialogOpening"
                    and e["params"].get("message") not in dialogs]
        facts["dialogs"] = dialogs
        facts["exceptions"] = [e["params"]["exceptionDetails"].get("text") for e in events
                               if e.get("method") == "Runtime.exceptionThrown"]
        facts["console_errors"] = [e["params"] for e in events if e.get("method") == "Runtime.consoleAPICalled"
                                   and e["params"].get("type") in ("error", "assert")]
        facts["log_errors"] = [e["params"]["entry"].get("text") for e in events if e.get("method") == "Log.entryAdded"
                               and e["params"]["entry"].get("level") == "error"]
        return facts
    finally:
        devtools.close()


def _wait_for_any(self, deadline):
    """The next event (also kept in self.events)."""
    event = self._read_message(deadline)
    if "method" in event:
        self.events.append(event)
    return event


DevTools.wait_for_any = _wait_for_any


@pytest.fixture
def hostile_report(tmp_path):
    with HostileTarget() as target:
        plan = tmp_path / "hostile.yaml"
        plan.write_text(
            f"name: '{SCRIPT}{IMG}'\n"
            f"target: http://127.0.0.1:{target.port}\n"
            "load: {model: closed, vus: 1, duration: 1s}\n"
            "scenarios:\n"
            "  - name: s\n"
            "    steps:\n"
            "      - name: a\n"
            f"        request: 'GET /{SCRIPT}?q={IMG_NO_SPACES}'\n"
            f"        headers: {{X-Evil: '{SCRIPT}', X-Two: '{IMG}'}}\n")
        html_plan = tmp_path / "plan.html"
        run = run_surge("run", str(plan), "-w", "1", "-q", "--html", str(html_plan))
        assert run.code == 0, run.stderr
        html_url = tmp_path / "url.html"
        run = run_surge("run", f"http://127.0.0.1:{target.port}/{SCRIPT}?q={IMG_NO_SPACES}", "-n", "20", "-c", "1",
                        "-w", "1", "-q", "-H", f"X-Evil: {SCRIPT}", "-H", f"X-Two: {IMG}", "--html", str(html_url))
        assert run.code == 0, run.stderr
    return html_plan, html_url


def test_hostile_strings_are_escaped_in_the_html_source(hostile_report):
    for path in hostile_report:
        page = path.read_text()
        assert page.count("<script") == REPORT_SCRIPTS, path
        assert "<img" not in page, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;img" in page


def test_chromium_shows_them_as_text_and_runs_nothing(hostile_report, chromium_page, tmp_path):
    binary = chromium_page.find_chromium()
    for n, path in enumerate(hostile_report):
        facts = open_in_chromium(binary, path, tmp_path / f"profile-{n}")
        assert facts["dialogs"] == [], facts["dialogs"]
        assert facts["exceptions"] == [] and facts["console_errors"] == [] and facts["log_errors"] == [], facts
        assert facts["imgs"] == 0 and facts["scripts"] == REPORT_SCRIPTS
        assert SCRIPT in facts["text"], path                       # shown, as text
        status = json.loads(facts["status"])
        assert not status.get("errors") and int(status["rendered"]) == int(status["charts"]) > 0, status


def test_the_harness_does_see_a_dialog_and_an_error_when_a_page_has_them(chromium_page, tmp_path):
    """The control: the same strings unescaped do run (so 'no dialog' above means something)."""
    page = tmp_path / "unsafe.html"
    page.write_text(f"<html><body><div id='surge-render-status' data-rendered='1' data-charts='1'></div>"
                    f"{SCRIPT}{IMG}<script>undefinedFunction()</script></body></html>")
    facts = open_in_chromium(chromium_page.find_chromium(), page, tmp_path / "profile")
    assert "1" in facts["dialogs"] and facts["exceptions"] and facts["imgs"] == 1
