"""Keeping secrets out of results, reports and messages.

What surge writes or prints (the result's "config", the HTML page, the live
line, error messages) shows a secret header's value or a URL's password as
`***`; the bytes sent keep the real value.  One place decides what a secret is,
so every writer redacts the same way.
"""
from __future__ import annotations

MASK = "***"
# Header names whose values are credentials (compared lower-case).
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})


def is_secret_header(name: str) -> bool:
    return name.strip().lower() in SECRET_HEADERS


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
    return f"{user}:{MASK}" if sep else user


def redact_url(url: str) -> str:
    """A URL as it may be shown: a password in its userinfo becomes `***`.

    Works on malformed URLs too (error messages show what the user typed):
    the authority is whatever follows '://' up to the next '/', '?' or '#'."""
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
        return f"basic {redact_userinfo(user + ':')}"
    return f"{kind} {MASK}" if kind == "bearer" else kind
