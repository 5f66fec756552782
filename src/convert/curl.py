"""`surge convert --curl 'curl ...'`: one curl command line as a one-step plan.

Read: the URL (positional or --url), -X/--request, -H/--header,
-d/--data/--data-raw/--data-binary/--data-ascii (joined with & as curl does;
@FILE is read), --data-urlencode, --json (JSON body, Content-Type and Accept),
-G/--get (the data goes in the query), -I/--head, -u/--user (Basic: read from
an environment variable), -A/--user-agent, -e/--referer, -k/--insecure.
-b/--cookie is left to the cookie jar, output and connection flags (-s, -v,
-o, -L, --compressed, ...) mean nothing to a load test; every flag not read is
listed as a comment.  The command is split the way a POSIX shell would
('...', "...", $'...' as Chrome's "Copy as cURL" writes it, backslashes, line
continuations), without running anything.
"""
from __future__ import annotations

import json
import os
from urllib.parse import quote, urlsplit, urlunsplit

from surge.convert.draft import Draft, DraftHost, DraftStep, origin_of, step_name
from surge.convert.errors import ConvertError
from surge.convert.journey import _Converter      # the same header and secret rules as recordings

# Flags that take a value, and those that do not, which a load test has no use for.
_IGNORED_WITH_VALUE = {"-o", "--output", "--connect-timeout", "-m", "--max-time", "--retry", "-w", "--write-out",
                       "--cacert", "--cert", "--key", "--resolve", "-x", "--proxy", "--max-redirs", "-r",
                       "--range", "-T", "--upload-file", "-c", "--cookie-jar", "-F", "--form", "--interface",
                       "--dns-servers", "-K", "--config", "--limit-rate", "--retry-delay", "--retry-max-time"}
_IGNORED_FLAGS = {"-s", "--silent", "-S", "--show-error", "-v", "--verbose", "-i", "--include", "-L", "--location",
                  "--compressed", "-f", "--fail", "--http1.1", "--http2", "--http1.0", "-#", "--progress-bar",
                  "-N", "--no-buffer", "--globoff", "-g", "--no-keepalive", "--tr-encoding", "-4", "-6",
                  "--fail-with-body", "--path-as-is", "--ssl-no-revoke", "-O", "--remote-name"}
_DATA = {"-d", "--data", "--data-raw", "--data-binary", "--data-ascii", "--data-urlencode"}
_SHORT_WITH_VALUE = set("XHdAeubox") | {"m", "w", "r", "T", "c", "F", "K"}


def split_command(text: str) -> list[str]:
    """Shell words of a command line (quotes, $'...', backslashes; no expansion)."""
    words, word, i, in_word = [], [], 0, False
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n and text[i + 1] == "\n":
            i += 2                                          # a line continuation
            continue
        if ch in " \t\r\n":
            if in_word:
                words.append("".join(word))
                word, in_word = [], False
            i += 1
            continue
        in_word = True
        if ch == "'":
            end = text.find("'", i + 1)
            if end < 0:
                raise ConvertError("--curl: a ' quote is not closed")
            word.append(text[i + 1:end])
            i = end + 1
        elif ch == "$" and i + 1 < n and text[i + 1] == "'":
            value, i = _ansi_c(text, i + 2)
            word.append(value)
        elif ch == '"':
            i += 1
            while i < n and text[i] != '"':
                if text[i] == "\\" and i + 1 < n and text[i + 1] in '$`"\\\n':
                    if text[i + 1] != "\n":
                        word.append(text[i + 1])
                    i += 2
                else:
                    word.append(text[i])
                    i += 1
            if i >= n:
                raise ConvertError('--curl: a " quote is not closed')
            i += 1
        elif ch == "\\" and i + 1 < n:
            word.append(text[i + 1])
            i += 2
        else:
            word.append(ch)
            i += 1
    if in_word:
        words.append("".join(word))
    return words


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "e": "\x1b", "E": "\x1b", "f": "\f",
            "v": "\v", "\\": "\\", "'": "'", '"': '"', "?": "?"}


def _ansi_c(text: str, i: int) -> tuple[str, int]:
    """$'...' from index i (after the quote): (value, index after the closing quote)."""
    out = []
    while i < len(text):
        ch = text[i]
        if ch == "'":
            return "".join(out), i + 1
        if ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
                i += 2
                continue
            if nxt in "xuU":
                width = {"x": 2, "u": 4, "U": 8}[nxt]
                digits = ""
                while len(digits) < width and i + 2 + len(digits) < len(text) and \
                        text[i + 2 + len(digits)] in "0123456789abcdefABCDEF":
                    digits += text[i + 2 + len(digits)]
                if digits:
                    out.append(chr(int(digits, 16)))
                    i += 2 + len(digits)
                    continue
            if nxt in "01234567":
                digits = text[i + 1:i + 4]
                digits = digits[:len(digits) - len(digits.lstrip("01234567"))] or digits[0]
                out.append(chr(int(digits, 8) & 0xFF))
                i += 1 + len(digits)
                continue
            out.append(ch + nxt)
            i += 2
            continue
        out.append(ch)
        i += 1
    raise ConvertError("--curl: a $' quote is not closed")


def _expand_short(words: list[str]) -> list[str]:
    """'-sSL' -> '-s -S -L'; '-XPOST' -> '-X POST'; '-HName: v' -> '-H', 'Name: v'."""
    out = []
    for word in words:
        if word.startswith("-") and not word.startswith("--") and len(word) > 2:
            letters = word[1:]
            for k, letter in enumerate(letters):
                out.append(f"-{letter}")
                if letter in _SHORT_WITH_VALUE:
                    rest = letters[k + 1:]
                    if rest:
                        out.append(rest)
                    break
            continue
        if word.startswith("--") and "=" in word:
            name, _, value = word.partition("=")
            out += [name, value]
            continue
        out.append(word)
    return out


def _data(flag: str, value: str) -> str:
    """One -d value as curl sends it: @FILE read (newlines dropped but for --data-binary)."""
    if flag == "--data-urlencode":
        name, eq, content = value.partition("=")
        return f"{quote(name, safe='')}={quote(content, safe='')}" if eq else quote(value, safe="")
    if flag != "--data-raw" and value.startswith("@"):
        path = value[1:]
        try:
            with open(path, encoding="utf-8") as f:
                content = f.read()
        except OSError as exc:
            raise ConvertError(f"--curl: {flag} {value}: cannot read {path}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise ConvertError(f"--curl: {flag} {value}: not text (a binary body cannot go in a plan)") from None
        return content if flag == "--data-binary" else content.replace("\r", "").replace("\n", "")
    return value


def convert_curl(command: str, vus: int = 1, duration: str = "1m") -> Draft:
    """The one-step plan of a curl command.  Raises ConvertError."""
    words = split_command(command)
    if words and os.path.basename(words[0]) in ("curl", "curl.exe"):
        words = words[1:]
    if not words:
        raise ConvertError("--curl: no URL in the command (expected 'curl [OPTIONS] URL')")
    words = _expand_short(words)
    url = method = user = None
    headers, data, notes = [], [], []
    as_json = as_get = insecure = head = False
    i = 0

    def value_of(flag):
        nonlocal i
        if i + 1 >= len(words):
            raise ConvertError(f"--curl: {flag} needs a value")
        i += 1
        return words[i]

    while i < len(words):
        word = words[i]
        if word in ("-X", "--request"):
            method = value_of(word).upper()
        elif word in ("-H", "--header"):
            line = value_of(word)
            name, sep, value = line.partition(":")
            if not sep or not name.strip():
                raise ConvertError(f"--curl: -H {line!r}: expected 'Name: value'")
            if value.strip():                   # curl's 'Name:' removes a header: nothing to send
                headers.append((name.strip(), value.strip()))
        elif word in _DATA:
            data.append(_data(word, value_of(word)))
        elif word == "--json":
            data.append(_data("--data-binary", value_of(word)))
            as_json = True
        elif word in ("-G", "--get"):
            as_get = True
        elif word in ("-I", "--head"):
            head = True
        elif word in ("-u", "--user"):
            user = value_of(word)
        elif word in ("-A", "--user-agent"):
            headers.append(("User-Agent", value_of(word)))
        elif word in ("-e", "--referer"):
            headers.append(("Referer", value_of(word)))
        elif word in ("-k", "--insecure"):
            insecure = True
        elif word in ("-b", "--cookie"):
            value_of(word)
            notes.append(f"{word}: cookies are left to the cookie jar (a step gets them from Set-Cookie)")
        elif word == "--url":
            url = value_of(word)
        elif word in _IGNORED_WITH_VALUE:
            shown = value_of(word)
            notes.append(f"{word} {shown if word not in ('--cert', '--key') else '...'}: not used by a load test")
        elif word in _IGNORED_FLAGS:
            notes.append(f"{word}: not used by a load test" + (" (plans follow redirects themselves)"
                                                               if word in ("-L", "--location") else ""))
        elif word.startswith("-") and word != "-":
            notes.append(f"{word}: an option surge convert does not know; left out")
        elif url is None:
            url = word
        else:
            notes.append(f"{word}: a second URL; only the first is converted")
        i += 1
    if url is None:
        raise ConvertError("--curl: no URL in the command (expected 'curl [OPTIONS] URL')")
    if "://" not in url:
        url = "http://" + url                   # as curl does
    parts = urlsplit(url)
    try:
        parts.port
    except ValueError:
        raise ConvertError(f"--curl: {url!r}: the port is not a number from 1 to 65535") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConvertError(f"--curl: {url!r}: expected an http:// or https:// URL")
    body = "&".join(data) if data else None
    if as_get and body is not None:
        url = url + ("&" if parts.query else "?") + body
        body = None
        parts = urlsplit(url)
    method = method or ("HEAD" if head else "POST" if body is not None else "GET")
    names = {h.lower() for h, _ in headers}
    if as_json:
        if "content-type" not in names:
            headers.append(("Content-Type", "application/json"))
        if "accept" not in names:
            headers.append(("Accept", "application/json"))
    elif body is not None and "content-type" not in names:
        headers.append(("Content-Type", "application/x-www-form-urlencoded"))    # as curl sends -d
    if parts.username is not None and user is None:
        user = parts.username + (":" + parts.password if parts.password is not None else "")
        notes.append("credentials in the URL: sent as Basic auth (the step's auth:)")
    if user is not None:
        import base64
        headers.append(("Authorization", "Basic " + base64.b64encode(user.encode()).decode()))
    return _draft(url, method, headers, body, notes, insecure, vus, duration)


def _draft(url, method, headers, body, notes, insecure, vus, duration) -> Draft:
    from surge.convert.har import Recorded, Recording
    from surge.convert.journey import Options

    parts = urlsplit(url.split("#")[0])
    clean = urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, parts.query, ""))
    recorded = Recorded(index=0, method=method, url=clean, headers=headers, body=body,
                        body_mime=next((v for h, v in headers if h.lower() == "content-type"), None))
    # The same header rules as a recording (Chrome's "Copy as cURL" brings the browser's own
    # headers along); a User-Agent typed with -A is kept.
    typed_agent = frozenset({"user-agent"}) if any(h == "User-Agent" for h, _ in headers) else frozenset()
    converter = _Converter(Recording("curl", [recorded], {}),
                           Options(keep_headers=typed_agent, vus=vus, duration=duration))
    target = DraftHost("target", origin_of(clean), "TARGET_URL")
    name = step_name(clean, set())
    step = DraftStep(name=name, request="")
    step.request = converter.request_line(recorded, {}, target, name, [], [])
    step.headers = converter.headers(recorded, name, [], [])
    step.auth = converter.auth.get(name)
    converter.body(recorded, step, [], [])
    step.notes = list(notes)
    draft = converter.draft(target, {}, [step], [])
    draft.name, draft.source, draft.scenario = "curl", "a curl command", "curl"
    if insecure and parts.scheme == "https":
        draft.insecure = True
    elif insecure:
        step.notes.append("-k: the URL is plain http, there is no certificate to check")
    return draft
