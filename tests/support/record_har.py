"""Record a real browser session of `surge serve --app demo` as a HAR 1.2 file.

Headless Chromium is driven over the DevTools protocol on a pipe
(`--remote-debugging-pipe`: JSON messages ended by NUL on file descriptors 3
and 4, so no WebSocket library is needed). The page opens the demo app's
search, then its script does what a user of the shop's API does: log in, open
the dashboard with the token, look at an item, log out, with pauses between;
where the demo app has its cookie-session shop (/web/*), the same user then
logs in there (a session cookie), opens the account, places an order (a POST
answered 303, followed) and logs out.
Network events (requestWillBeSent, responseReceived, loadingFinished, and
their ExtraInfo twins for the headers really sent) become HAR entries, with
the response bodies (Network.getResponseBody).

    python -m tests.support.record_har OUT.har            # starts its own demo server
    python -m tests.support.record_har OUT.har --url http://127.0.0.1:8080

tests/data/demo-session.har was made this way (08:28, with the /web/* shop); tests/convert/test_har_convert.py
records a fresh one when Chromium is installed.
"""
from __future__ import annotations

import argparse
import base64
import datetime as _dt
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time

JOURNEY_JS = """
(async () => {
  const pause = ms => new Promise(done => setTimeout(done, ms));
  await pause(700);
  const login = await fetch('/login', {method: 'POST',
      headers: {'Content-Type': 'application/json', 'X-Client': 'shop-web'},
      body: JSON.stringify({user: 'alice', password: 'wonderland'})});
  const token = (await login.json()).token;
  await pause(900);
  await (await fetch('/dashboard', {headers: {'Authorization': 'Bearer ' + token, 'Accept': 'application/json'}})).json();
  await pause(500);
  await (await fetch('/items/42', {headers: {'Accept': 'application/json'}})).json();
  await pause(400);
  await fetch('/logout', {method: 'POST', headers: {'Authorization': 'Bearer ' + token}});
  return 'done';
})()
"""
# The shop as a browser sees it (demo routes /web/*, where the server has them): a
# session cookie set by the login and sent by the browser, and an order whose POST
# answers 303 See Other, which fetch follows as a browser does.
WEB_JOURNEY_JS = """
(async () => {
  const pause = ms => new Promise(done => setTimeout(done, ms));
  await pause(300);
  await (await fetch('/web/login', {method: 'POST',
      headers: {'Content-Type': 'application/x-www-form-urlencoded'},
      body: 'user=alice&password=wonderland'})).json();
  await pause(600);
  await (await fetch('/web/account')).json();
  await pause(500);
  const order = await fetch('/web/orders', {method: 'POST', headers: {'Content-Type': 'application/json'},
      body: JSON.stringify({item: 42, quantity: 2})});
  if (!order.redirected) throw new Error('the order did not redirect');
  await order.json();
  await pause(400);
  await fetch('/web/logout', {method: 'POST'});
  return 'done';
})()
"""
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-extensions", "--disable-quic",
         "--remote-debugging-pipe"]


def find_chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


class DevTools:
    """The DevTools protocol over Chromium's pipe: commands out on fd 3, replies and events in on fd 4."""

    def __init__(self, binary: str, profile: str):
        to_browser_r, self._out = os.pipe()
        self._in, from_browser_w = os.pipe()

        def child_fds():           # the browser reads fd 3 and writes fd 4
            reader, writer = os.dup(to_browser_r), os.dup(from_browser_w)   # neither may be 3 or 4 now
            os.dup2(reader, 3)
            os.dup2(writer, 4)

        # close_fds=False: subprocess would close 3 and 4 after child_fds ran
        self.process = subprocess.Popen([binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                        preexec_fn=child_fds, close_fds=False,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._in], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer over the DevTools pipe")
            chunk = os.read(self._in, 1 << 16)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)

    def call(self, method: str, params: dict | None = None, session: str | None = None,
             timeout_s: float = 30.0) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout_s
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def wait_for(self, method: str, timeout_s: float = 30.0) -> dict:
        for event in self.events:
            if event["method"] == method:
                return event
        deadline = time.monotonic() + timeout_s
        while True:
            event = self._read_message(deadline)
            if "method" in event:
                self.events.append(event)
                if event["method"] == method:
                    return event

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout_s=5)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._out)
        os.close(self._in)


def _iso(wall_s: float) -> str:
    moment = _dt.datetime.fromtimestamp(wall_s, _dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _pairs(headers: dict) -> list[dict]:
    out = []
    for name, value in (headers or {}).items():
        for line in str(value).split("\n"):        # DevTools joins repeated headers with a newline
            out.append({"name": name, "value": line})
    return out


def _new_entry(params: dict) -> dict:
    request = params["request"]
    return {"request_id": params["requestId"], "start_ts": params["timestamp"], "wall": params["wallTime"],
            "method": request["method"], "url": request["url"] + request.get("urlFragment", ""),
            "headers": request.get("headers", {}), "post": request.get("postData"),
            "has_post": request.get("hasPostData", False), "type": params.get("type", "Other"),
            "response": None, "end_ts": None, "body": None, "redirect_url": ""}


def har_entries(events: list[dict], devtools: DevTools, session: str) -> list[dict]:
    """HAR entries from the recorded Network events (in the order requests started)."""
    current, done, extra_request = {}, [], {}
    extra_response = {}
    for event in events:
        method, params = event["method"], event.get("params", {})
        rid = params.get("requestId")
        if method == "Network.requestWillBeSent":
            if rid in current and params.get("redirectResponse"):
                hop = current.pop(rid)          # the previous hop ended with this redirect
                hop["response"], hop["end_ts"] = params["redirectResponse"], params["timestamp"]
                hop["redirect_url"] = params["request"]["url"]
                done.append(hop)
            current[rid] = _new_entry(params)
        elif method == "Network.requestWillBeSentExtraInfo":
            extra_request.setdefault(rid, []).append(params.get("headers", {}))
        elif method == "Network.responseReceivedExtraInfo":
            extra_response.setdefault(rid, []).append(params.get("headers", {}))
        elif method == "Network.responseReceived" and rid in current:
            current[rid]["response"] = params["response"]
        elif method in ("Network.loadingFinished", "Network.loadingFailed") and rid in current:
            entry = current.pop(rid)
            entry["end_ts"] = params["timestamp"]
            entry["failed"] = method == "Network.loadingFailed"
            done.append(entry)
    done.sort(key=lambda e: e["start_ts"])
    hops_seen: dict = {}
    entries = []
    for entry in done:
        rid = entry["request_id"]
        hop = hops_seen.get(rid, 0)
        hops_seen[rid] = hop + 1
        sent = extra_request.get(rid, [])
        if hop < len(sent) and sent[hop]:
            entry["headers"] = sent[hop]        # what went on the wire (Cookie included)
        received = extra_response.get(rid, [])
        if entry["response"] is not None and hop < len(received) and received[hop]:
            entry["response"] = dict(entry["response"], headers=received[hop])
        if entry["has_post"] and entry["post"] is None:
            try:
                entry["post"] = devtools.call("Network.getRequestPostData", {"requestId": rid}, session)["postData"]
            except RuntimeError:
                pass
        if entry["response"] is not None and not entry.get("failed") and not entry["redirect_url"]:
            try:
                got = devtools.call("Network.getResponseBody", {"requestId": rid}, session)
                entry["body"] = (got["body"], got.get("base64Encoded", False))
            except RuntimeError:
                pass
        entries.append(_har_entry(entry))
    return entries


def _har_entry(entry: dict) -> dict:
    response = entry["response"] or {}
    total_ms = max(0.0, (entry["end_ts"] - entry["start_ts"]) * 1000.0) if entry["end_ts"] else 0.0
    timing = response.get("timing") or {}
    send_ms = max(0.0, timing.get("sendEnd", 0) - timing.get("sendStart", 0)) if timing else 0.0
    wait_ms = max(0.0, timing.get("receiveHeadersEnd", 0) - timing.get("sendEnd", 0)) if timing else total_ms
    receive_ms = max(0.0, total_ms - send_ms - wait_ms)
    request_headers = _pairs(entry["headers"])
    mime = next((h["value"] for h in request_headers if h["name"].lower() == "content-type"), "")
    content = {"size": 0, "mimeType": response.get("mimeType", "")}
    if entry["body"] is not None:
        text, encoded = entry["body"]
        content["size"] = len(base64.b64decode(text)) if encoded else len(text.encode())
        content["text"] = text
        if encoded:
            content["encoding"] = "base64"
    from urllib.parse import parse_qsl, urlsplit
    har = {
        "pageref": "page_1", "startedDateTime": _iso(entry["wall"]), "time": round(total_ms, 3),
        "request": {"method": entry["method"], "url": entry["url"], "httpVersion": "HTTP/1.1",
                    "headers": request_headers, "cookies": [],
                    "queryString": [{"name": k, "value": v} for k, v in
                                    parse_qsl(urlsplit(entry["url"]).query, keep_blank_values=True)],
                    "headersSize": -1, "bodySize": len((entry["post"] or "").encode())},
        "response": {"status": response.get("status", 0), "statusText": response.get("statusText", ""),
                     "httpVersion": (response.get("protocol") or "http/1.1").upper(),
                     "headers": _pairs(response.get("headers", {})), "cookies": [], "content": content,
                     "redirectURL": entry["redirect_url"], "headersSize": -1, "bodySize": content["size"]},
        "cache": {},
        "timings": {"blocked": -1, "dns": -1, "connect": -1, "ssl": -1, "send": round(send_ms, 3),
                    "wait": round(wait_ms, 3), "receive": round(receive_ms, 3)},
        "_resourceType": entry["type"].lower(),
    }
    if entry["post"] is not None:
        har["request"]["postData"] = {"mimeType": mime, "text": entry["post"]}
    return har


def has_web_routes(base_url: str) -> bool:
    """Whether the demo app serves the cookie-session shop (/web/*): its status path lists the routes."""
    import urllib.request
    with urllib.request.urlopen(base_url.rstrip("/") + "/__surge/status", timeout=5) as answer:
        routes = json.load(answer).get("routes", {})
    return "POST /web/login" in routes


def demo_journey(base_url: str) -> tuple[str, list[str]]:
    """(the page to open, the scripts to run on it) of a session of the demo app."""
    scripts = [JOURNEY_JS] + ([WEB_JOURNEY_JS] if has_web_routes(base_url) else [])
    return "/search?q=shoes", scripts


def record(base_url: str, out_path: str, chromium: str | None = None, page: str | None = None,
           scripts: list[str] | None = None) -> dict:
    """Record a session into out_path; returns the HAR.  By default the demo
    app's journey (demo_journey); else open `page` (a path of base_url) and
    run each of `scripts` there (each an expression whose promise gives 'done')."""
    binary = chromium or find_chromium()
    if binary is None:
        raise RuntimeError("chromium not installed (apt-get install chromium)")
    if page is None:
        page, scripts = demo_journey(base_url)
    with tempfile.TemporaryDirectory(prefix="surge-har-") as profile:
        devtools = DevTools(binary, profile)
        try:
            target = devtools.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = devtools.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            devtools.call("Network.enable", {}, session)
            devtools.call("Page.enable", {}, session)
            started_wall = time.time()
            page_url = base_url.rstrip("/") + page
            devtools.call("Page.navigate", {"url": page_url}, session)
            devtools.wait_for("Page.loadEventFired")
            for script in scripts or ():
                done = devtools.call("Runtime.evaluate", {"expression": script, "awaitPromise": True,
                                                          "returnByValue": True}, session, timeout_s=60)
                if done.get("result", {}).get("value") != "done":
                    raise RuntimeError(f"the journey's script failed: {done}")
            time.sleep(0.5)                     # the last loadingFinished events
            devtools.call("Runtime.evaluate", {"expression": "1"}, session)   # collects pending events
            entries = har_entries(devtools.events, devtools, session)
        finally:
            devtools.close()
    version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.strip()
    har = {"log": {"version": "1.2",
                   "creator": {"name": "surge tests/support/record_har.py", "version": "1"},
                   "browser": {"name": "Chromium", "version": version.split()[1] if version else ""},
                   "pages": [{"startedDateTime": _iso(started_wall), "id": "page_1", "title": page_url,
                              "pageTimings": {"onContentLoad": -1, "onLoad": -1}}],
                   "entries": entries}}
    with open(out_path, "w") as f:
        json.dump(har, f, indent=1)
        f.write("\n")
    return har


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--url", help="a running demo app (default: start one)")
    args = parser.parse_args()
    if args.url:
        har = record(args.url, args.out)
    else:
        from surge.serve.server import ServeProcess
        server = ServeProcess(app="demo").start()
        try:
            har = record(server.url, args.out)
        finally:
            server.stop()
    print(f"wrote {args.out} ({len(har['log']['entries'])} entries)", file=sys.stderr)


if __name__ == "__main__":
    main()
