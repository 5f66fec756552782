"""The demo app's session-cookie shop and echo routes (`surge serve --app demo`):
over real sockets (the compiled protocol hands the app the Cookie header), and
DemoApp.respond for the exact bytes."""
import json
from urllib.parse import quote

import pytest

from surge.serve.demo import ROUTES, DemoApp
from tests.support.http_client import Client, get

LOGIN = json.dumps({"user": "alice", "password": "pw"}).encode()


def post(path: str, body: bytes = b"", extra: str = "") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Length: {len(body)}\r\n{extra}\r\n").encode() + body


def ask(client: Client, request: bytes) -> tuple[int, dict, bytes]:
    client.send(request)
    return client.read_response()


def cookie(value: str) -> str:
    return f"Cookie: {value}\r\n"


@pytest.fixture
def demo(surge_server):
    return surge_server(app="demo", workers=2)


def web_login(client: Client, body: bytes = LOGIN) -> str:
    status, headers, _ = ask(client, post("/web/login", body))
    assert status == 200
    return headers["set-cookie"].split(";")[0]         # "session=tok-..."


def test_login_sets_a_session_cookie_with_path_and_httponly(demo, client_factory):
    client = client_factory(demo.port)
    status, headers, body = ask(client, post("/web/login", LOGIN))
    assert status == 200 and json.loads(body) == {"user": "alice"}
    name_value, *attributes = [part.strip() for part in headers["set-cookie"].split(";")]
    assert name_value.startswith("session=tok-alice-")
    assert attributes == ["Path=/", "HttpOnly"]


def test_a_form_login_works_too_and_a_bad_one_is_400(demo, client_factory):
    client = client_factory(demo.port)
    assert web_login(client, b"user=bob&password=x").startswith("session=tok-bob-")
    for bad in (b"", b"user=&password=x", b"password=x", b'{"user": 1}', b"\xff"):
        status, headers, _ = ask(client, post("/web/login", bad))
        assert status == 400 and "set-cookie" not in headers


@pytest.mark.parametrize("method, path", [("GET", "/web/account"), ("POST", "/web/orders"),
                                          ("POST", "/web/logout"), ("GET", "/web/orders/0-1")])
def test_session_pages_answer_401_without_a_valid_session_cookie(demo, client_factory, method, path):
    client = client_factory(demo.port)
    request = get if method == "GET" else post
    for extra in ("", cookie("session=tok-alice-0-1.0000000000000000"), cookie("other=1")):
        status, _, body = ask(client, request(path, extra=extra))
        assert status == 401, (extra, body)


def test_the_session_is_accepted_by_every_worker(demo, client_factory):
    clients = [client_factory(demo.port) for _ in range(12)]
    sessions = [web_login(client) for client in clients]
    for n, client in enumerate(clients):
        status, _, body = ask(client, get("/web/account", cookie(f"theme=dark; {sessions[-1 - n]}")))
        assert status == 200 and json.loads(body)["user"] == "alice"


def test_an_order_answers_303_see_other_to_the_created_order(demo, client_factory):
    client = client_factory(demo.port)
    session = web_login(client)
    status, headers, body = ask(client, post("/web/orders", b'{"item": 5}', cookie(session)))
    assert status == 303
    location = headers["location"]
    assert location.startswith("/web/orders/") and json.loads(body) == {"order": location}
    status, _, body = ask(client, get(location, cookie(session)))
    assert status == 200 and json.loads(body)["id"] == location.rsplit("/", 1)[1]
    assert ask(client, get("/web/orders/nope", cookie(session)))[0] == 404
    assert ask(client, post(location, b"", cookie(session)))[0] == 405


def test_logout_deletes_the_cookie(demo, client_factory):
    client = client_factory(demo.port)
    session = web_login(client)
    status, headers, _ = ask(client, post("/web/logout", b"", cookie(session)))
    assert status == 204
    assert headers["set-cookie"] == "session=; Path=/; Max-Age=0; HttpOnly"


def test_echo_cookies_shows_the_cookie_header_as_received(demo, client_factory):
    client = client_factory(demo.port)
    assert json.loads(ask(client, get("/echo/cookies"))[2]) == {"cookie": None}
    body = ask(client, get("/echo/cookies", cookie("a=1; b=2") + cookie("c=3")))[2]
    assert json.loads(body) == {"cookie": "a=1; b=2; c=3"}        # two lines read as one


def test_echo_set_cookie_sends_each_value_as_its_own_line():
    app = DemoApp()
    target = "/echo/set-cookie?c=" + quote("a=1; Path=/x", safe="") + "&c=b%3D2&c=" + quote("bad\r\nX: 1")
    route, response = app.respond(b"GET", target.encode(), None, None, False, b"", False)
    assert ROUTES[route] == "GET /echo/set-cookie"
    head, body = response.split(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert [line for line in lines if line.startswith(b"Set-Cookie")] == [b"Set-Cookie: a=1; Path=/x",
                                                                          b"Set-Cookie: b=2"]
    assert json.loads(body) == {"set": 2}


def test_the_new_routes_are_counted_and_the_old_ones_keep_their_slots(demo, client_factory):
    client = client_factory(demo.port)
    session = web_login(client)
    ask(client, get("/web/account", cookie(session)))
    ask(client, get("/echo/cookies"))
    routes = demo.routes()
    assert routes["POST /web/login"] == 1 and routes["GET /web/account"] == 1 and routes["GET /echo/cookies"] == 1
    assert ROUTES[:7] == ("POST /login", "GET /dashboard", "POST /logout", "GET /search",
                          "GET /items/{id}", "GET /admin/report", "other")
