"""`surge serve --app demo`: the routes test plans need, over real loopback sockets.

Each route and its status codes, bearer tokens (accepted by every worker),
per-route counters in the status JSON with two workers, request bodies
(Content-Length and chunked, pipelined, split anywhere), delays and --close
with the demo app, and the default app left as it was.
"""
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from surge.serve.demo import BODY_LIMIT_BYTES, ROUTES, DemoApp
from tests.support.http_client import Client, get, head

# loopback only: never through a proxy the environment may name
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
MS = 1_000_000  # ns


def post(path: str, body: bytes = b"", extra: str = "") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{extra}\r\n").encode() + body


def login_body(user: str = "alice", password: str = "secret") -> bytes:
    return json.dumps({"user": user, "password": password}).encode()


def bearer(token: str) -> str:
    return f"Authorization: Bearer {token}\r\n"


@pytest.fixture
def demo(surge_server):
    return surge_server(app="demo")


def ask(client: Client, request: bytes, head_request: bool = False) -> tuple[int, dict, bytes]:
    client.send(request)
    return client.read_response(head_request)


def login(client: Client, user: str = "alice") -> str:
    status, headers, body = ask(client, post("/login", login_body(user)))
    assert status == 200, body
    return json.loads(body)["token"]


# -- routes ----------------------------------------------------------------------------

def test_login_returns_a_json_token_derived_from_the_user(demo, client_factory):
    client = client_factory(demo.port)
    status, headers, body = ask(client, post("/login", login_body("alice")))
    assert status == 200
    assert headers["content-type"] == "application/json"
    token = json.loads(body)["token"]
    assert token.startswith("tok-alice-")
    second = login(client, "alice")
    assert second != token  # a counter makes each login's token new


@pytest.mark.parametrize("body", [
    b"",
    b"not json",
    b"[1, 2]",
    b'{"password": "x"}',
    b'{"user": "", "password": "x"}',
    b'{"user": 7, "password": "x"}',
    b'{"user": "alice"}',
    b'{"user": "alice", "password": null}',
    b"\xff\xfe{",
    b"[" * 50_000,
])
def test_login_without_a_valid_body_is_400_and_the_connection_stays(demo, client_factory, body):
    client = client_factory(demo.port)
    status, headers, answer = ask(client, post("/login", body))
    assert status == 400
    assert "error" in json.loads(answer)
    assert "connection" not in headers
    assert ask(client, get("/admin/report"))[0] == 200  # still usable


def test_a_login_body_over_the_limit_is_413_and_skipped(demo, client_factory):
    client = client_factory(demo.port)
    huge = b'{"user": "alice", "password": "' + b"x" * BODY_LIMIT_BYTES + b'"}'
    status, _, _ = ask(client, post("/login", huge))
    assert status == 413
    assert login(client)  # the huge body was framed past, not read as requests


def test_dashboard_needs_a_valid_bearer_token(demo, client_factory):
    client = client_factory(demo.port)
    token = login(client, "bob")
    status, headers, body = ask(client, get("/dashboard", bearer(token)))
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["user"] == "bob"
    # the scheme is case-insensitive (RFC 9110 §11.1)
    assert ask(client, get("/dashboard", f"Authorization: bearer {token}\r\n"))[0] == 200

    tampered = token[:-1] + ("0" if token[-1] != "0" else "1")
    for extra in ["", bearer(""), bearer("nonsense"), bearer(tampered), bearer(token + "x"),
                  bearer("tok-bob-0-1"), f"Authorization: Basic {token}\r\n",
                  f"Authorization: {token}\r\n"]:
        status, headers, body = ask(client, get("/dashboard", extra))
        assert status == 401, extra
        assert headers["www-authenticate"] == "Bearer"
        assert "error" in json.loads(body)


def test_a_token_from_another_server_is_rejected(surge_server, client_factory):
    first, second = surge_server(app="demo"), surge_server(app="demo")
    token = login(client_factory(first.port))
    assert ask(client_factory(second.port), get("/dashboard", bearer(token)))[0] == 401


def test_logout_is_204_with_a_token_and_401_without(demo, client_factory):
    client = client_factory(demo.port)
    token = login(client)
    status, headers, body = ask(client, post("/logout", extra=bearer(token)))
    assert status == 204
    assert body == b"" and "content-length" not in headers
    assert ask(client, post("/logout"))[0] == 401
    assert ask(client, post("/logout", extra=bearer("tok-x-0-1.0123456789abcdef")))[0] == 401


def test_search_returns_a_few_items_for_a_word(demo, client_factory):
    client = client_factory(demo.port)
    status, headers, body = ask(client, get("/search?q=shoe"))
    assert status == 200
    assert headers["content-type"] == "application/json"
    items = json.loads(body)
    assert 1 <= len(items) <= 10
    for item in items:
        assert set(item) == {"id", "name"}
        assert 1 <= item["id"] <= 1000
        assert "shoe" in item["name"]
    assert json.loads(ask(client, get("/search?q=shoe"))[2]) == items  # the same word, the same items
    assert "red shoe" in json.loads(ask(client, get("/search?q=red%20shoe&page=2"))[2])[0]["name"]
    assert json.loads(ask(client, get("/search?q="))[2]) == []
    assert ask(client, get("/search"))[0] == 400
    assert ask(client, get("/search?word=shoe"))[0] == 400


@pytest.mark.parametrize("number", [1, 2, 500, 999, 1000])
def test_items_in_range_are_200_with_their_id(demo, client_factory, number):
    status, headers, body = ask(client_factory(demo.port), get(f"/items/{number}"))
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["id"] == number


@pytest.mark.parametrize("path", ["/items/0", "/items/1001", "/items/-1", "/items/abc", "/items/1.5",
                                  "/items/", "/items/5/more", "/items/%31", "/items/\u0661".encode().decode("latin-1")])
def test_items_out_of_range_or_not_a_number_are_404(demo, client_factory, path):
    status, _, body = ask(client_factory(demo.port), get(path))
    assert status == 404
    assert json.loads(body) == {"error": "not found"}


def test_admin_report_is_200_json(demo, client_factory):
    status, headers, body = ask(client_factory(demo.port), get("/admin/report"))
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert isinstance(json.loads(body), dict)


@pytest.mark.parametrize("request_bytes, status", [
    (get("/"), 404),
    (get("/nope"), 404),
    (get("/login/extra"), 404),
    (get("/Login"), 404),
    (post("/items"), 404),
    (get("/login"), 405),
    (post("/dashboard"), 405),
    (get("/logout"), 405),
    (post("/search"), 405),
    (post("/admin/report"), 405),
    (post("/items/3"), 405),
    (b"DELETE /items/3 HTTP/1.1\r\nHost: test\r\n\r\n", 405),
])
def test_unknown_paths_are_404_and_wrong_methods_405(demo, client_factory, request_bytes, status):
    answer_status, headers, body = ask(client_factory(demo.port), request_bytes)
    assert answer_status == status
    if status == 405:
        assert headers["allow"] in ("GET, HEAD", "POST")
    assert "error" in json.loads(body)


def test_head_is_answered_like_get_without_the_body(demo, client_factory):
    client = client_factory(demo.port)
    _, get_headers, get_body = ask(client, get("/items/7"))
    status, headers, body = ask(client, head("/items/7"), head_request=True)
    assert status == 200
    assert headers["content-length"] == str(len(get_body)) == get_headers["content-length"]
    assert body == b""
    assert ask(client, get("/items/8"))[2] == ask(client, get("/items/8"))[2]  # the stream is intact


def test_absolute_form_targets_are_routed_by_their_path(demo, client_factory):
    status, _, body = ask(client_factory(demo.port), get("http://test/items/12?x=1"))
    assert status == 200 and json.loads(body)["id"] == 12


def test_the_flow_works_through_urllib(demo):
    request = urllib.request.Request(demo.url + "/login", data=login_body("carol"),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with DIRECT.open(request, timeout=5) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/json"
        token = json.loads(response.read())["token"]
    auth = {"Authorization": f"Bearer {token}"}
    with DIRECT.open(urllib.request.Request(demo.url + "/dashboard", headers=auth), timeout=5) as response:
        assert json.loads(response.read())["user"] == "carol"
    logout = urllib.request.Request(demo.url + "/logout", data=b"", headers=auth, method="POST")
    with DIRECT.open(logout, timeout=5) as response:
        assert response.status == 204
    with pytest.raises(urllib.error.HTTPError) as raised:
        DIRECT.open(demo.url + "/dashboard", timeout=5)
    assert raised.value.code == 401
    raised.value.close()


# -- bodies on the wire ----------------------------------------------------------------

def test_pipelined_requests_with_bodies_are_answered_in_order(demo, client_factory):
    client = client_factory(demo.port)
    users = [f"user{n}" for n in range(20)]
    requests = []
    for user in users:
        requests.append(post("/login", login_body(user)))
        requests.append(get("/items/%d" % (len(user) + 1)))
    client.send(*requests)
    for user in users:
        status, _, body = client.read_response()
        assert status == 200
        assert json.loads(body)["token"].startswith(f"tok-{user}-")
        status, _, body = client.read_response()
        assert status == 200 and json.loads(body)["id"] == len(user) + 1


def test_bodies_split_anywhere_are_read_whole(demo, client_factory):
    client = client_factory(demo.port)
    client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    stream = post("/login", login_body("dave")) + post("/login", login_body("erin")) + get("/items/3")
    for offset in range(0, len(stream), 7):
        client.send(stream[offset:offset + 7])
        time.sleep(0.001)
    assert json.loads(client.read_response()[2])["token"].startswith("tok-dave-")
    assert json.loads(client.read_response()[2])["token"].startswith("tok-erin-")
    assert json.loads(client.read_response()[2])["id"] == 3


def test_chunked_bodies_are_read_whole(demo, client_factory):
    client = client_factory(demo.port)
    body = login_body("frank")
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in (body[:5], body[5:9], body[9:]))
    client.send(b"POST /login HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n"
                + chunked + b"0\r\nX-Trailer: yes\r\n\r\n", get("/items/1"))
    status, _, answer = client.read_response()
    assert status == 200 and json.loads(answer)["token"].startswith("tok-frank-")
    assert json.loads(client.read_response()[2])["id"] == 1


def test_users_with_any_characters_get_working_tokens(demo, client_factory):
    client = client_factory(demo.port)
    for user in ["a-b-c", "dot.ted", "spa ce", "ünïcødé", "tok-0-1", "a/b?c"]:
        token = login(client, user)
        token.encode("ascii")  # fits in a header as is
        status, _, body = ask(client, get("/dashboard", bearer(token)))
        assert status == 200 and json.loads(body)["user"] == user


# -- counting, workers, options ------------------------------------------------------------

def test_routes_are_counted_over_all_workers_and_tokens_work_in_any_worker(surge_server, client_factory):
    server = surge_server(app="demo", workers=2)
    # many connections, so the kernel gives both workers some (SO_REUSEPORT)
    clients = [client_factory(server.port) for _ in range(24)]
    tokens = [login(client, f"u{n}") for n, client in enumerate(clients)]
    issued_by = {token.split("-")[2] for token in tokens}
    assert issued_by == {"0", "1"}, tokens  # both workers issued tokens
    expected = dict.fromkeys(ROUTES, 0)
    expected["POST /login"] = len(clients)
    for n, token in enumerate(tokens):
        for client in clients[n % 3::3]:  # each token is shown to connections of both workers
            assert ask(client, get("/dashboard", bearer(token)))[0] == 200
            expected["GET /dashboard"] += 1
    for n, client in enumerate(clients):
        for _ in range(n % 4):
            ask(client, get(f"/search?q=w{n}"))
            expected["GET /search"] += 1
        ask(client, get(f"/items/{n + 1}"))
        ask(client, get("/admin/report"))
        ask(client, get("/missing"))
        ask(client, post("/logout", extra=bearer(tokens[n])))
        expected["GET /items/{id}"] += 1
        expected["GET /admin/report"] += 1
        expected["other"] += 1
        expected["POST /logout"] += 1
    status = server.status()
    assert status["app"] == "demo"
    assert status["workers"] == 2
    assert status["routes"] == expected
    assert server.routes() == expected
    assert status["requests"] == sum(expected.values())  # the status path is not counted


def test_a_weighted_mix_is_counted_exactly(surge_server, client_factory):
    """What the plan tests rely on: the server's counts are exact under load."""
    server = surge_server(app="demo", workers=2)
    clients = [client_factory(server.port) for _ in range(8)]
    for round_number in range(50):
        for client in clients:
            client.send(post("/login", login_body()), get("/search?q=x"), get("/search?q=y"),
                        get("/items/5"), get("/admin/report"))
            for _ in range(5):
                assert client.read_response()[0] == 200
    routes = server.routes()
    assert routes["POST /login"] == 400
    assert routes["GET /search"] == 800
    assert routes["GET /items/{id}"] == 400
    assert routes["GET /admin/report"] == 400
    assert routes["GET /dashboard"] == routes["POST /logout"] == routes["other"] == 0


def test_delay_holds_demo_answers_too(surge_server, client_factory):
    server = surge_server(app="demo", delay="40ms")
    client = client_factory(server.port)
    for request in (post("/login", login_body()), get("/items/3"), get("/nope")):
        started_ns = time.monotonic_ns()
        status, _, _ = ask(client, request)
        assert time.monotonic_ns() - started_ns >= 40 * MS
        assert status in (200, 404)
    started_ns = time.monotonic_ns()
    assert server.status()["app"] == "demo"  # the status path is never held
    assert time.monotonic_ns() - started_ns < 40 * MS


def test_close_option_closes_after_each_demo_answer(surge_server, client_factory):
    server = surge_server(app="demo", close=True)
    client = client_factory(server.port)
    status, headers, body = ask(client, post("/login", login_body()))
    assert status == 200 and headers["connection"] == "close"
    assert json.loads(body)["token"]
    assert client.at_eof()


def test_the_default_app_is_unchanged(surge_server, client_factory):
    server = surge_server()
    client = client_factory(server.port)
    for request in (post("/login", login_body()), get("/nope"), get("/items/0")):
        status, headers, body = ask(client, request)
        assert (status, body, headers.get("content-type")) == (200, b"", None)
    status = server.status()
    assert status["app"] == "default"
    assert "routes" not in status
    assert status["requests"] == 3


def test_the_listening_line_names_the_app(demo):
    assert demo.listening_line.endswith("(1 worker; app demo)")


def _surge_serve(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "surge", "serve", *args],
                          capture_output=True, text=True, timeout=20)


@pytest.mark.parametrize("args, fragment", [
    (["--app", "shop"], "--app"),
    (["--app", "demo", "--status", "503"], "--status applies to --app default only"),
    (["--app", "demo", "--body-size", "1k"], "--body-size applies to --app default only"),
])
def test_bad_app_options_exit_2_with_one_line(args, fragment):
    result = _surge_serve(*args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], result.stderr
    assert "Traceback" not in result.stderr


# -- the app itself, without sockets ----------------------------------------------------

def test_tokens_are_checked_by_form_alone_across_app_instances():
    secret = b"s" * 16
    worker_0, worker_1 = DemoApp(0, secret), DemoApp(1, secret)
    token = worker_0.issue_token("x-y.z")
    assert worker_1.token_user(token) == "x-y.z"
    assert DemoApp(0, b"other secret").token_user(token) is None
    assert worker_1.token_user(token.replace("tok-", "tak-", 1)) is None
    assert worker_1.token_user("") is None


def test_an_app_bug_is_a_500_not_a_dropped_connection(monkeypatch):
    app = DemoApp()

    def broken(*args):
        raise KeyError("boom")

    monkeypatch.setattr(app, "_search", broken)
    route, response = app.respond(b"GET", b"/search?q=a", None, None, False, b"", False)
    assert response.startswith(b"HTTP/1.1 500 ")
    assert ROUTES[route] == "other"


def _answer_body(response: bytes) -> bytes:
    return response.split(b"\r\n\r\n", 1)[1]


def test_remembered_answers_are_the_answers_made_afresh():
    """Status lines, item answers, dashboards, login users and verified tokens are looked up after
    the first time: the bytes stay those the routes make from scratch (json.dumps bodies)."""
    import surge.serve.demo as demo

    secret = b"s" * 16
    app, other = DemoApp(0, secret), DemoApp(1, secret)
    user = 'ann smith/ü?&"\\'
    body = json.dumps({"user": user, "password": "pw"}).encode()
    for connection in (b"", b"Connection: keep-alive\r\n", b"Connection: close\r\n"):
        first = app.respond(b"POST", b"/login", None, body, False, connection, False)[1]
        second = app.respond(b"POST", b"/login", None, body, False, connection, False)[1]
        tokens = [json.loads(_answer_body(r))["token"] for r in (first, second)]
        assert tokens[0] != tokens[1]                       # a new token per login, as before
        for response, token in zip((first, second), tokens):
            assert _answer_body(response) == json.dumps({"token": token}).encode()
            assert response == demo.render(200, json.dumps({"token": token}).encode(), connection, False)
            assert other.token_user(token) == user == app.token_user(token)
        dashboard = json.dumps({"user": user, "orders": 3, "unread_messages": 1,
                                "widgets": ["orders", "recommendations", "messages"]}).encode()
        for token in tokens:
            for is_head in (False, True):
                expected = demo.render(200, dashboard, connection, is_head)
                for shop in (app, other, app):              # issued here, verified there, then remembered
                    auth = b"Bearer " + token.encode()
                    assert shop.respond(b"GET", b"/dashboard", auth, None, False, connection, is_head) == (1, expected)
                    assert shop.respond(b"POST", b"/logout", auth, None, False, connection, is_head)[1] == \
                        b"HTTP/1.1 204 No Content\r\n" + connection + b"\r\n"
        for n in (1, 500, 1000):
            expected = demo.render(200, app._items[n - 1], connection, False)
            assert app.respond(b"GET", b"/items/%d" % n, None, None, False, connection, False) == (4, expected)
            assert app.respond(b"GET", b"/items/%d" % n, None, None, False, connection, False) == (4, expected)
    for bad in (b"", b"{", b'{"user": ""}', b'{"user": "a", "password": 1}', b"[]"):
        for _ in range(2):
            status_line = app.respond(b"POST", b"/login", None, bad, False, b"", False)[1].split(b"\r\n")[0]
            assert status_line == b"HTTP/1.1 400 Bad Request"
    forged = tokens[0][:-1] + ("0" if tokens[0][-1] != "0" else "1")
    for _ in range(2):
        assert app.respond(b"GET", b"/dashboard", b"Bearer " + forged.encode(), None, False, b"", False)[1] \
            .startswith(b"HTTP/1.1 401 ")


def test_the_lookup_tables_stay_bounded(monkeypatch):
    import surge.serve.demo as demo

    monkeypatch.setattr(demo, "CACHE_ENTRIES", 8)
    secret = b"s" * 16
    app, other = DemoApp(0, secret), DemoApp(1, secret)
    tokens = {}
    for k in range(30):
        body = json.dumps({"user": f"user{k}", "password": "pw"}).encode()
        response = app.respond(b"POST", b"/login", None, body, False, b"", False)[1]
        tokens[f"user{k}"] = json.loads(_answer_body(response))["token"]
        assert app.respond(b"GET", b"/dashboard", b"Bearer " + tokens[f"user{k}"].encode(), None,
                           False, b"", False)[1].startswith(b"HTTP/1.1 200 ")
    for k in range(1, 1001):
        app.respond(b"GET", b"/items/%d" % k, None, None, False, b"", False)
    for table in (app._token_users, app._dashboards, app._login_users, app._item_answers):
        assert 0 < len(table) <= 8
    for user, token in tokens.items():          # tokens forgotten by the table are checked again
        assert app.token_user(token) == user == other.token_user(token)
