"""Keeping secrets out of results, reports and messages.

What surge writes or prints (the result's "config", the HTML page, the live
line, error messages) shows a secret header's value or a URL's password as
`***`; the bytes sent keep the real value.  One place decides what a secret is,
so every writer redacts the same way.

Two layers:

- by shape: a secret header's value, a URL's password, the value of a query
  parameter named like a credential (`?token=`, `?api_key=`, `?sig=`), an
  auth block (`redact_header`, `redact_url`, `redact_query`, `redact_auth`),
  wherever one is shown;
- by value: `Secrets` holds the values a run knows to be secret (the URL's
  password, -H/--auth credentials, secret query parameters' values, every
  `${env.NAME}` value a plan uses, plan fields named like password/token/secret,
  the columns of a data source marked `secret:`), and `scrub`/`scrub_tree`
  replace any of them found in text or in the result dict.  `surge run` activates the run's Secrets once
  (`activate`), so any writer (the journal, an error message) calls `scrub`
  or `scrub_tree` without being handed them.

`--no-redact` (`set_enabled(False)`) turns both off; the result says so
(`"redacted": false`) and the summary prints a warning line.
"""
from __future__ import annotations

import re

MASK = "***"
# Header names whose values are credentials (compared lower-case).
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
# ... and a header whose name ends like a credential (the last word decides: X-Token-Name is not one).
SECRET_HEADER_NAME = re.compile(r"(?:^|[-_])(?:api[-_]?key|token|secret|pass(?:word|wd)|credentials?)$", re.I)
# A plan field (a json:/form: body field, an auth block) named like this holds a secret.
SECRET_FIELD = re.compile(r"pass(word|wd)?|secret|token|api[-_]?key|credential|bearer", re.I)
# A URL query parameter named like a credential: the name's end decides (access_token,
# accessToken, X-Amz-Signature, client_secret, api_key; and as a whole word key, sig,
# auth, pwd, pass), so ?tokens_left= or ?monkey= or ?compass= are not secrets.
SECRET_QUERY_NAME = re.compile(r"(?:token|secret|pass(?:word|wd)|api[-_]?key|signature|credentials?)$"
                               r"|(?:^|[-_.])(?:key|sig|auth|pwd|pass)$", re.I)
# name=value after ? or & (a URL, a request line, a message quoting either); the value
# ends at the next parameter, fragment, space or quote.
_QUERY_PARAM = re.compile(r"([?&]([^=&?#\s'\"<>]+)=)([^&#\s'\"<>]+)")
# Values shorter than this are not scrubbed from free text (they would mask
# ordinary words and numbers); the by-shape layer still hides them.
MIN_SCRUB_CHARS = 4

_enabled = True


def set_enabled(on: bool) -> None:
    """--no-redact: set_enabled(False) for the whole process (workers included)."""
    global _enabled
    _enabled = bool(on)


def enabled() -> bool:
    return _enabled


def is_secret_header(name: str) -> bool:
    """Authorization, Cookie and the like, and any header named like a credential
    (X-Api-Key, X-Auth-Token, X-Client-Secret; not X-Token-Name, which names one)."""
    name = name.strip()
    return _enabled and (name.lower() in SECRET_HEADERS or SECRET_HEADER_NAME.search(name) is not None)


def is_secret_field(name) -> bool:
    """A plan field whose value is a credential ('password', 'api_key', 'refreshToken')."""
    return isinstance(name, str) and SECRET_FIELD.search(name) is not None


def redact_header(name: str, value: str) -> str:
    """The value to show for header `name`: `***` for a secret header."""
    return MASK if is_secret_header(name) else value


def redact_header_line(line: str) -> str:
    """'Name: value' as it may be shown ('Authorization: ***')."""
    name, sep, value = line.partition(":")
    if not sep or not is_secret_header(name):
        return line
    return f"{name}: {MASK}"


def redact_userinfo(userinfo: str) -> str:
    """'user:password' -> 'user:***' (a bare user name is not a secret)."""
    user, sep, _ = userinfo.partition(":")
    if not _enabled:
        return userinfo
    return f"{user}:{MASK}" if sep else user


def is_secret_query_name(name: str) -> bool:
    """A query parameter whose value is a credential ('token', 'api_key', 'sig')."""
    from urllib.parse import unquote_plus
    return SECRET_QUERY_NAME.search(unquote_plus(name)) is not None


def redact_query(text: str) -> str:
    """`text` with the value of every query parameter named like a credential
    as `***` ('/search?q=x&token=abc' -> '/search?q=x&token=***')."""
    if not _enabled or not isinstance(text, str) or "=" not in text:
        return text
    return _QUERY_PARAM.sub(lambda m: m.group(1) + MASK if is_secret_query_name(m.group(2)) else m.group(0), text)


def query_secrets(text: str) -> list[str]:
    """The values of the secret-named query parameters in `text`, as written and
    decoded (the bytes sent carry the first, a message may show either)."""
    from urllib.parse import unquote_plus
    found = []
    for m in _QUERY_PARAM.finditer(text):
        if is_secret_query_name(m.group(2)):
            found += [m.group(3), unquote_plus(m.group(3))]
    return found


def redact_url(url: str) -> str:
    """A URL as it may be shown: a password in its userinfo and the values of
    its secret-named query parameters become `***`.

    Works on malformed URLs too (error messages show what the user typed):
    the authority is whatever follows '://' up to the next '/', '?' or '#'."""
    return redact_query(_redact_userinfo_of(url))


def _redact_userinfo_of(url: str) -> str:
    scheme_end = url.find("://")
    if scheme_end < 0:
        return url
    start = scheme_end + 3
    end = len(url)
    for stop in "/?#":
        found = url.find(stop, start)
        if found >= 0:
            end = min(end, found)
    authority = url[start:end]
    at = authority.rfind("@")
    if at < 0:
        # A malformed URL whose password holds a '/', '?' or '#' ('u:pa/ss@host'):
        # mask up to the last '@' when a ':' comes before that character.
        last_at = url.rfind("@", start)
        colon = url.find(":", start)
        if last_at < 0 or colon < 0 or colon > end:
            return url
        return url[:colon + 1] + MASK + url[last_at:]
    return url[:start] + redact_userinfo(authority[:at]) + authority[at:] + url[end:]


def redact_auth(kind: str, user: str = "") -> str:
    """A plan's `auth:` as it may be shown: 'basic alice:***', 'bearer ***', 'off'."""
    if kind == "basic":
        return f"basic {user}:{MASK}"
    return f"{kind} {MASK}" if kind == "bearer" else kind


# ---- by value ---------------------------------------------------------------------
class Secrets:
    """The secret values of one run, and their removal from what is shown."""

    def __init__(self, values=()):
        self._values: set[str] = set()
        self._by_length: dict[int, set[str]] = {}
        for value in values:
            self.add(value)

    def add(self, value) -> None:
        """Remember `value` (text of MIN_SCRUB_CHARS or more; anything else is ignored)."""
        if not isinstance(value, str):
            return
        value = value.strip()
        if len(value) >= MIN_SCRUB_CHARS and value not in self._values:
            self._values.add(value)
            self._by_length.setdefault(len(value), set()).add(value)

    def update(self, other: "Secrets") -> "Secrets":
        for value in other._values:
            self.add(value)
        return self

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, value) -> bool:
        return value in self._values

    def __repr__(self) -> str:                  # never the values
        return f"Secrets({len(self._values)} values)"

    def scrub(self, text: str) -> str:
        """`text` with every secret value in it replaced by ***, longest first."""
        if not _enabled or not self._values or not isinstance(text, str) or len(text) < MIN_SCRUB_CHARS:
            return text
        if len(self._values) <= 256:            # few: str.replace runs in C
            for value in sorted(self._values, key=len, reverse=True):
                if value in text:
                    text = text.replace(value, MASK)
            return text
        return self._scrub_windows(text)

    def _scrub_windows(self, text: str) -> str:
        """Many values (a secret data column): one set lookup per position and length."""
        lengths = sorted((n for n in self._by_length if n <= len(text)), reverse=True)
        out, i, last = [], 0, 0
        while i <= len(text) - MIN_SCRUB_CHARS:
            for n in lengths:
                if text[i:i + n] in self._by_length[n]:
                    out.append(text[last:i])
                    out.append(MASK)
                    i += n
                    last = i
                    break
            else:
                i += 1
        out.append(text[last:])
        return "".join(out)

    def scrub_tree(self, value):
        """A copy of a JSON-like value (the result dict) with every string (and
        key) scrubbed; histogram texts (keys starting with 'hdr') are kept."""
        if not _enabled or not self._values:
            return value
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, dict):
            return {self.scrub(k) if isinstance(k, str) else k:
                    (v if isinstance(k, str) and k.startswith("hdr") else self.scrub_tree(v))
                    for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.scrub_tree(v) for v in value]
        return value


_active = Secrets()


def activate(secrets: Secrets) -> None:
    """The run's secrets, for every writer in this process (set once by `surge run`)."""
    global _active
    _active = secrets


def active() -> Secrets:
    return _active


def scrub(text: str) -> str:
    """`text` as it may be shown (a message): the active run's secret values, and
    any secret-named query parameter's value (redact_query), as ***."""
    return redact_query(_active.scrub(text))


def scrub_tree(value):
    """A JSON-like value as it may be written: the active run's secret values as ***."""
    return _active.scrub_tree(value)


_ENV_REFERENCE = re.compile(r"\$\{\s*env\.([A-Za-z_][A-Za-z0-9_]*)")
_VARIABLE_REFERENCE = re.compile(r"\$\{\s*([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)")


def env_values(text: str, environ) -> list[str]:
    """The values of every ${env.NAME} that `text` (a plan file) refers to."""
    return [environ[name] for name in set(_ENV_REFERENCE.findall(text)) if name in environ]


def plan_secrets(document, text: str, environ, sources=()) -> Secrets:
    """A plan's secret values: ${env.*} values, literal values of fields named
    like a secret (and of secret headers), a target's or host's URL password,
    the values of secret-named query parameters in any URL or request line,
    and every value of a data column marked `secret:` or fed into a
    secret-named field (`password: ${users.password}`)."""
    secrets = Secrets(env_values(text, environ))
    secret_columns: set[tuple[str, str]] = set()

    def literal_or_columns(value: str) -> None:
        refs = _VARIABLE_REFERENCE.findall(value)
        secret_columns.update(refs)
        if "${" not in value:
            secrets.add(value)

    stack = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                secret_key = is_secret_field(key) or (isinstance(key, str) and key.lower() in SECRET_HEADERS)
                if secret_key and isinstance(value, (str, int, float)) and not isinstance(value, bool):
                    literal_or_columns(str(value))
                elif isinstance(value, str) and "://" in value and "@" in value:
                    password = _url_password(value)
                    if password:
                        secrets.add(password)
                if isinstance(value, str) and "?" in value:         # a URL or request line: ?token=...
                    for secret in query_secrets(value):
                        literal_or_columns(secret)
                stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)
    for source in sources:
        marked = set(getattr(source, "secret_columns", ()))
        marked.update(column for name, column in secret_columns if name == source.name)
        for n, column in enumerate(source.columns):
            if column in marked:
                for row in source.rows:
                    secrets.add(row[n])
    return secrets


def _url_password(url: str) -> str | None:
    """The password in a URL's user:password@, if any (unquoted as sent)."""
    from urllib.parse import unquote
    start = url.find("://") + 3
    end = len(url)
    for stop in "/?#":
        found = url.find(stop, start)
        if found >= 0:
            end = min(end, found)
    userinfo, at, _ = url[start:end].rpartition("@")
    user, colon, password = userinfo.partition(":")
    return unquote(password) if at and colon and password else None
