"""`surge serve --app demo`: a small shop for test plans (login, search, items, ...).

The compiled protocol frames each request and hands this app its method,
target, Authorization value and body; `DemoApp.respond` picks the route and
returns the route's index (for the per-route counters in shared memory) and
the whole response. One Python call per request: the demo app is for plan
tests, not for maximum requests per second (the default app is). What does
not change is computed once and looked up after (status lines, each item's
answer, a user's dashboard, a login body's user, tokens already verified), so
the flow routes cost the target about what GET /items/N does: bench/flow_cost.py
compares a plan's client CPU with a URL run's against this target, and a slow
target halves the rate and inflates the client's cost per request. Each cache
is bounded (emptied when full), so a long run's memory stays flat.

Tokens are checked by their form alone, so any worker can check a token any
other worker issued (SO_REUSEPORT spreads one user's connections over
workers): `tok-<user>-<worker>-<n>.<mac>`, where <user> is percent-encoded,
<n> counts logins in that worker and <mac> is a truncated HMAC-SHA256 of the
rest under a secret the parent draws once and every worker shares.

Routes (HEAD is answered like GET, without the body):

    POST /login          {"user": str, "password": str} -> 200 {"token": ...}; else 400 (413 when huge)
    GET  /dashboard      Authorization: Bearer <token>   -> 200 {"user": ..., ...}; else 401
    POST /logout         Authorization: Bearer <token>   -> 204; else 401
    GET  /search?q=WORD  -> 200 [{"id": n, "name": ...}, ...] (3 items; [] for an empty q); no q -> 400
    GET  /items/N        N from 1 to 1000 -> 200 {"id": N, ...}; anything else -> 404
    GET  /admin/report   -> 200 {"orders": ..., ...}

The same shop as a browser sees it, signed in by a session cookie (the value
is a token as above, so any worker accepts it):

    POST /web/login      {"user": str, "password": str} (or a form body user=..&password=..)
                         -> 200 {"user": ...} + Set-Cookie: session=<token>; Path=/; HttpOnly; else 400
    GET  /web/account    Cookie: session=<token> -> 200 {"user": ..., ...}; else 401
    POST /web/orders     Cookie: session=<token> -> 303 See Other, Location: /web/orders/<id>; else 401
    GET  /web/orders/ID  Cookie: session=<token> -> 200 {"id": ID, "user": ..., ...}; else 401 (404: no such ID)
    POST /web/logout     Cookie: session=<token> -> 204 + Set-Cookie: session=; Path=/; Max-Age=0; else 401

And two routes for testing cookie jars:

    GET  /echo/cookies   -> 200 {"cookie": <the request's Cookie header, or null>}
    GET  /echo/set-cookie?c=VALUE&c=... -> 200 {"set": n}, one `Set-Cookie: VALUE` line per c
                         (URL-decoded; a value with a line break is left out)

a known path with another method -> 405 (with Allow); any other path -> 404
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import zlib
from http import HTTPStatus
from urllib.parse import parse_qs, quote, unquote

# Route names as the status path reports them, in counter-slot order (new ones
# go last: a slot's meaning never changes).
ROUTES = ("POST /login", "GET /dashboard", "POST /logout", "GET /search",
          "GET /items/{id}", "GET /admin/report", "other",
          "POST /web/login", "GET /web/account", "POST /web/orders", "GET /web/orders/{id}", "POST /web/logout",
          "GET /echo/cookies", "GET /echo/set-cookie")
(ROUTE_LOGIN, ROUTE_DASHBOARD, ROUTE_LOGOUT, ROUTE_SEARCH, ROUTE_ITEMS, ROUTE_REPORT, ROUTE_OTHER,
 ROUTE_WEB_LOGIN, ROUTE_ACCOUNT, ROUTE_NEW_ORDER, ROUTE_ORDER, ROUTE_WEB_LOGOUT,
 ROUTE_ECHO_COOKIES, ROUTE_ECHO_SET_COOKIE) = range(14)
# Counter slots per worker: 16 x uint64 is two 64-byte cache lines, so two
# workers never write to the same line.
ROUTE_SLOTS = 16
SESSION_COOKIE = "session"
# What the session routes send back, computed once.
_SESSION_SET = b"Set-Cookie: session=%s; Path=/; HttpOnly\r\n"
_SESSION_CLEARED = b"Set-Cookie: session=; Path=/; Max-Age=0; HttpOnly\r\n"

ITEM_COUNT = 1000
SEARCH_RESULTS = 3
# The largest request body the demo app reads; larger ones are skipped, answered 413.
BODY_LIMIT_BYTES = 64 * 1024
TOKEN_PREFIX = "tok-"
MAC_HEX_DIGITS = 16  # 64 bits of HMAC-SHA256: plenty for a test target

_JSON = b"Content-Type: application/json\r\n"
# Entries per lookup table (tokens verified, dashboards, login bodies); a full one is emptied.
CACHE_ENTRIES = 16384
# Login bodies longer than this are parsed every time, never kept.
CACHED_BODY_BYTES = 256
_STATUS_LINES: dict[int, bytes] = {}
_ALLOWED = {"/login": ("POST", ROUTE_LOGIN), "/dashboard": ("GET", ROUTE_DASHBOARD),
            "/logout": ("POST", ROUTE_LOGOUT), "/search": ("GET", ROUTE_SEARCH),
            "/admin/report": ("GET", ROUTE_REPORT), "/web/login": ("POST", ROUTE_WEB_LOGIN),
            "/web/account": ("GET", ROUTE_ACCOUNT), "/web/orders": ("POST", ROUTE_NEW_ORDER),
            "/web/logout": ("POST", ROUTE_WEB_LOGOUT), "/echo/cookies": ("GET", ROUTE_ECHO_COOKIES),
            "/echo/set-cookie": ("GET", ROUTE_ECHO_SET_COOKIE)}
_SESSION_ROUTES = (ROUTE_ACCOUNT, ROUTE_NEW_ORDER, ROUTE_WEB_LOGOUT)


def render(status: int, body: bytes, connection_header: bytes, is_head: bool,
           extra_headers: bytes = b"") -> bytes:
    """A whole response; 204 has neither a body nor a Content-Length (RFC 9110 §8.6)."""
    head = _STATUS_LINES.get(status)
    if head is None:
        head = _STATUS_LINES[status] = b"HTTP/1.1 %d %s\r\n" % (status, HTTPStatus(status).phrase.encode("latin-1"))
    if status == 204:
        return head + extra_headers + connection_header + b"\r\n"
    head += _JSON + extra_headers + b"Content-Length: %d\r\n" % len(body) + connection_header + b"\r\n"
    return head if is_head else head + body


def _error_body(message: str) -> bytes:
    return json.dumps({"error": message}).encode()


def _remember(table: dict, key, value):
    """table[key] = value, emptying the table first when it is full; returns value."""
    if len(table) >= CACHE_ENTRIES:
        table.clear()
    table[key] = value
    return value


class DemoApp:
    """The demo shop for one worker: routes a request, counts its logins.

    token_secret (bytes) must be the same in every worker of one server, so
    tokens issued by one are accepted by all; None draws a random one.
    """

    def __init__(self, worker_index: int = 0, token_secret: bytes | None = None):
        self.worker_index = worker_index
        self.token_secret = os.urandom(16) if token_secret is None else bytes(token_secret)
        self.logins = 0
        self._items = [json.dumps({"id": n, "name": f"item {n}", "price_cents": 100 + (n * 37) % 9900,
                                   "in_stock": n % 7 != 0}).encode()
                       for n in range(1, ITEM_COUNT + 1)]
        self._report = json.dumps({"orders": 1234, "revenue_cents": 9876543, "users": 321}).encode()
        # answers that never change, rendered on first use: (name, connection header, is_head) -> bytes
        self._fixed: dict[tuple, bytes] = {}
        self._mac_base = hmac.new(self.token_secret, digestmod=hashlib.sha256)
        self._item_answers: dict[tuple, bytes] = {}     # (n, connection header, is_head) -> answer
        self._token_users: dict[str, str] = {}          # token -> user, for tokens already verified
        self._dashboards: dict[tuple, bytes] = {}       # (user, connection header, is_head) -> answer
        self._login_users: dict[bytes, str | None] = {}  # login body -> its user (None: a bad login)
        self._web_login_users: dict[bytes, str | None] = {}  # the same for /web/login (forms too)
        self._session_users: dict[bytes, str | None] = {}    # Cookie header -> its session's user
        self._accounts: dict[tuple, bytes] = {}              # (user, connection header, is_head) -> answer
        self._user_texts: dict[str, bytes] = {}               # user -> its JSON string
        self.orders = 0                                       # orders placed in this worker

    # -- tokens -------------------------------------------------------------------

    def issue_token(self, user: str) -> str:
        """A new token for user, valid in every worker sharing token_secret."""
        self.logins += 1
        payload = f"{TOKEN_PREFIX}{quote(user, safe='')}-{self.worker_index}-{self.logins}"
        token = f"{payload}.{self._mac(payload)}"
        _remember(self._token_users, token, user)
        return token

    def token_user(self, token: str) -> str | None:
        """The user a well-formed token was issued to, or None when it is not one of ours."""
        user = self._token_users.get(token)
        if user is None:
            user = self._check_token(token)
            if user is not None:
                _remember(self._token_users, token, user)
        return user

    def _check_token(self, token: str) -> str | None:
        payload, dot, mac = token.rpartition(".")
        if not dot or not payload.startswith(TOKEN_PREFIX) or len(mac) != MAC_HEX_DIGITS:
            return None
        if not hmac.compare_digest(mac, self._mac(payload)):
            return None
        quoted_user = payload[len(TOKEN_PREFIX):].rsplit("-", 2)[0]
        return unquote(quoted_user)

    def _mac(self, payload: str) -> str:
        h = self._mac_base.copy()      # the key's pads are hashed once, not per token
        h.update(payload.encode())
        return h.hexdigest()[:MAC_HEX_DIGITS]

    def _bearer_user(self, authorization: bytes | None) -> str | None:
        if not authorization:
            return None
        scheme, _, token = authorization.partition(b" ")
        if scheme.lower() != b"bearer":
            return None
        try:
            return self.token_user(token.strip().decode("ascii"))
        except UnicodeDecodeError:
            return None

    # -- answering ------------------------------------------------------------------

    def respond(self, method: bytes, target: bytes, authorization: bytes | None, body: bytes | None,
                body_too_large: bool, connection_header: bytes, is_head: bool,
                cookie: bytes | None = None) -> tuple[int, bytes]:
        """(route index, whole response) for one request; never raises (500 instead).
        cookie: the request's Cookie header (None: none)."""
        try:
            return self._respond(method, target, authorization, body, body_too_large,
                                 connection_header, is_head, cookie)
        except Exception as error:  # a bug here must not take the connection down
            message = f"demo app: {type(error).__name__}: {error}"
            return ROUTE_OTHER, render(500, _error_body(message), connection_header, is_head)

    def _fixed_answer(self, name: str, status: int, body: bytes, connection_header: bytes,
                      is_head: bool, extra_headers: bytes = b"") -> bytes:
        key = (name, connection_header, is_head)
        answer = self._fixed.get(key)
        if answer is None:
            answer = self._fixed[key] = render(status, body, connection_header, is_head, extra_headers)
        return answer

    def _respond(self, method: bytes, target: bytes, authorization: bytes | None, body: bytes | None,
                 body_too_large: bool, connection_header: bytes, is_head: bool,
                 cookie: bytes | None = None) -> tuple[int, bytes]:
        text = target.decode("latin-1")
        if text.startswith(("http://", "https://")):
            # absolute form (RFC 9112 §3.2.2): the path starts after the authority
            slash = text.find("/", text.find("//") + 2)
            text = "/" if slash < 0 else text[slash:]
        path, _, query = text.partition("?")
        verb = "GET" if method == b"HEAD" else method.decode("latin-1")

        if path.startswith("/items/"):
            if verb != "GET":
                return ROUTE_OTHER, self._not_allowed("GET, HEAD", connection_header, is_head)
            number = path[len("/items/"):]
            if number.isascii() and number.isdigit() and 1 <= int(number) <= ITEM_COUNT:
                key = (int(number), connection_header, is_head)
                answer = self._item_answers.get(key)
                if answer is None:
                    answer = _remember(self._item_answers, key,
                                       render(200, self._items[key[0] - 1], connection_header, is_head))
                return ROUTE_ITEMS, answer
            return ROUTE_ITEMS, self._not_found(connection_header, is_head)
        if path.startswith("/web/orders/"):
            if verb != "GET":
                return ROUTE_OTHER, self._not_allowed("GET, HEAD", connection_header, is_head)
            return ROUTE_ORDER, self._order(path[len("/web/orders/"):], cookie, connection_header, is_head)
        allowed = _ALLOWED.get(path)
        if allowed is None:
            return ROUTE_OTHER, self._not_found(connection_header, is_head)
        allowed_verb, route = allowed
        if verb != allowed_verb:
            allow = "GET, HEAD" if allowed_verb == "GET" else allowed_verb
            return ROUTE_OTHER, self._not_allowed(allow, connection_header, is_head)

        if route == ROUTE_LOGIN:
            return route, self._login(body, body_too_large, connection_header, is_head)
        if route == ROUTE_SEARCH:
            return route, self._search(query, connection_header, is_head)
        if route == ROUTE_REPORT:
            return route, self._fixed_answer("report", 200, self._report, connection_header, is_head)
        if route >= ROUTE_WEB_LOGIN:
            return route, self._web(route, body, body_too_large, query, cookie, connection_header, is_head)
        user = self._bearer_user(authorization)
        if user is None:
            return route, self._fixed_answer(
                "unauthorized", 401, _error_body("missing or invalid bearer token"),
                connection_header, is_head, b"WWW-Authenticate: Bearer\r\n")
        if route == ROUTE_LOGOUT:
            return route, self._fixed_answer("logout", 204, b"", connection_header, is_head)
        key = (user, connection_header, is_head)
        answer = self._dashboards.get(key)
        if answer is None:
            dashboard = json.dumps({"user": user, "orders": 3, "unread_messages": 1,
                                    "widgets": ["orders", "recommendations", "messages"]}).encode()
            answer = _remember(self._dashboards, key, render(200, dashboard, connection_header, is_head))
        return route, answer

    def _login(self, body: bytes | None, body_too_large: bool, connection_header: bytes,
               is_head: bool) -> bytes:
        if body_too_large:
            return self._fixed_answer(
                "too large", 413, _error_body(f"request body over {BODY_LIMIT_BYTES} bytes"),
                connection_header, is_head)
        user = self._login_users.get(body, False) if body is not None else None
        if user is False:
            user = self._login_user(body)
            if len(body) <= CACHED_BODY_BYTES:
                _remember(self._login_users, body, user)
        if user is None:
            return self._fixed_answer(
                "bad login", 400,
                _error_body('expected a JSON body {"user": "<non-empty string>", "password": "<string>"}'),
                connection_header, is_head)
        token = self.issue_token(user)
        # json.dumps({"token": token}) byte for byte: a token is the prefix, the percent-encoded
        # user, digits, "-", "." and hex, nothing JSON escapes
        return render(200, b'{"token": "%s"}' % token.encode("ascii"), connection_header, is_head)

    @staticmethod
    def _login_user(body: bytes) -> str | None:
        """The user of a login body, None when it is not {"user": <non-empty str>, "password": <str>}."""
        try:
            fields = json.loads(body)
        except (ValueError, RecursionError):
            return None
        if (not isinstance(fields, dict) or not isinstance(fields.get("user"), str) or not fields["user"]
                or not isinstance(fields.get("password"), str)):
            return None
        return fields["user"]

    def _search(self, query: str, connection_header: bytes, is_head: bool) -> bytes:
        words = parse_qs(query, keep_blank_values=True).get("q")
        if words is None:
            return self._fixed_answer("no q", 400, _error_body("expected a query ?q=WORD"),
                                      connection_header, is_head)
        word = words[0]
        results = []
        if word:
            # the same word finds the same items
            first = zlib.crc32(word.encode()) % ITEM_COUNT
            results = [{"id": (first + k * 337) % ITEM_COUNT + 1, "name": f"{word} {k + 1}"}
                       for k in range(SEARCH_RESULTS)]
        return render(200, json.dumps(results).encode(), connection_header, is_head)

    # -- the session-cookie shop and the echo routes -------------------------------------

    def _web(self, route: int, body: bytes | None, body_too_large: bool, query: str, cookie: bytes | None,
             connection_header: bytes, is_head: bool) -> bytes:
        if route == ROUTE_WEB_LOGIN:
            return self._web_login(body, body_too_large, connection_header, is_head)
        if route == ROUTE_ECHO_COOKIES:
            value = None if cookie is None else cookie.decode("latin-1")
            return render(200, json.dumps({"cookie": value}).encode(), connection_header, is_head)
        if route == ROUTE_ECHO_SET_COOKIE:
            return self._echo_set_cookie(query, connection_header, is_head)
        user = self.session_user(cookie)
        if user is None:
            return self._no_session(connection_header, is_head)
        if route == ROUTE_WEB_LOGOUT:
            return self._fixed_answer("web logout", 204, b"", connection_header, is_head, _SESSION_CLEARED)
        if route == ROUTE_NEW_ORDER:
            self.orders += 1
            location = b"/web/orders/%d-%d" % (self.worker_index, self.orders)
            return render(303, b'{"order": "%s"}' % location, connection_header, is_head,
                          b"Location: %s\r\n" % location)
        key = (user, connection_header, is_head)
        answer = self._accounts.get(key)
        if answer is None:
            account = json.dumps({"user": user, "orders": 3, "cart_items": 2}).encode()
            answer = _remember(self._accounts, key, render(200, account, connection_header, is_head))
        return answer

    def session_user(self, cookie: bytes | None) -> str | None:
        """The user of the request's session cookie (None: no valid one)."""
        if not cookie:
            return None
        user = self._session_users.get(cookie, False)
        if user is False:
            user = None
            for pair in cookie.split(b";"):
                name, eq, value = pair.strip().partition(b"=")
                if eq and name == b"session":
                    try:
                        user = self.token_user(value.strip().decode("ascii"))
                    except UnicodeDecodeError:
                        user = None
                    break
            if len(cookie) <= CACHED_BODY_BYTES:
                _remember(self._session_users, cookie, user)
        return user

    def _no_session(self, connection_header: bytes, is_head: bool) -> bytes:
        return self._fixed_answer("no session", 401, _error_body("missing or invalid session cookie"),
                                  connection_header, is_head)

    def _web_login(self, body: bytes | None, body_too_large: bool, connection_header: bytes,
                   is_head: bool) -> bytes:
        if body_too_large:
            return self._fixed_answer(
                "too large", 413, _error_body(f"request body over {BODY_LIMIT_BYTES} bytes"),
                connection_header, is_head)
        user = self._web_login_users.get(body, False) if body is not None else None
        if user is False:
            user = self._login_user(body) if body.lstrip()[:1] == b"{" else self._form_user(body)
            if len(body) <= CACHED_BODY_BYTES:
                _remember(self._web_login_users, body, user)
        if user is None:
            return self._fixed_answer(
                "bad web login", 400,
                _error_body('expected {"user": "<non-empty string>", "password": "<string>"} or a form '
                            'user=...&password=...'), connection_header, is_head)
        token = self.issue_token(user).encode("ascii")
        return render(200, b'{"user": %s}' % self._user_json(user), connection_header, is_head, _SESSION_SET % token)

    def _user_json(self, user: str) -> bytes:
        """json.dumps(user), once per user."""
        text = self._user_texts.get(user)
        if text is None:
            text = _remember(self._user_texts, user, json.dumps(user).encode())
        return text

    @staticmethod
    def _form_user(body: bytes) -> str | None:
        """The user of a form body user=..&password=.. (None: not one)."""
        try:
            fields = parse_qs(body.decode("ascii"), keep_blank_values=True, strict_parsing=True)
        except (UnicodeDecodeError, ValueError):
            return None
        users, passwords = fields.get("user"), fields.get("password")
        if not users or not users[0] or passwords is None:
            return None
        return users[0]

    def _order(self, order_id: str, cookie: bytes | None, connection_header: bytes, is_head: bool) -> bytes:
        user = self.session_user(cookie)
        if user is None:
            return self._no_session(connection_header, is_head)
        worker, dash, number = order_id.partition("-")
        if not (dash and worker.isascii() and worker.isdigit() and number.isascii() and number.isdigit()):
            return self._not_found(connection_header, is_head)
        # json.dumps({"id": ..., "user": ..., "status": "placed"}) byte for byte: the id is digits and "-"
        order = b'{"id": "%s", "user": %s, "status": "placed"}' % (order_id.encode("ascii"), self._user_json(user))
        return render(200, order, connection_header, is_head)

    def _echo_set_cookie(self, query: str, connection_header: bytes, is_head: bool) -> bytes:
        values = [v for v in parse_qs(query, keep_blank_values=True).get("c", []) if "\r" not in v and "\n" not in v]
        lines = b"".join(b"Set-Cookie: %s\r\n" % v.encode("utf-8") for v in values)
        return render(200, b'{"set": %d}' % len(values), connection_header, is_head, lines)

    def _not_found(self, connection_header: bytes, is_head: bool) -> bytes:
        return self._fixed_answer("not found", 404, _error_body("not found"), connection_header, is_head)

    def _not_allowed(self, allow: str, connection_header: bytes, is_head: bool) -> bytes:
        return self._fixed_answer(
            "not allowed " + allow, 405, _error_body(f"method not allowed; allowed: {allow}"),
            connection_header, is_head, b"Allow: %s\r\n" % allow.encode())
