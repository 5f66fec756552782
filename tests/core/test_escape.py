"""The one URL escaper (src/core/escape.pxd): its rule, and the bytes the
engine actually sends for slots in a path segment and in a query value."""
from __future__ import annotations

import csv
import string

import pytest

from surge.core._escape import escape, escape_bytes
from surge.plan import template as tpl
from surge.plan.build import compile_plan
from surge.plan.validate import load_plan
from surge.run.flows import FlowTables
from tests.core.test_request_bytes import RawServer, run_engine

UNRESERVED = "ABCXYZabcxyz0189-._~"
BOTH = "!$'()*,;:@"                      # sub-delimiters and : @ legal in a path segment and a query value


def test_unreserved_and_the_shared_delimiters_stay_literal_everywhere():
    assert escape(UNRESERVED + BOTH, "path") == UNRESERVED + BOTH
    assert escape(UNRESERVED + BOTH, "query") == UNRESERVED + BOTH


@pytest.mark.parametrize("char, path, query", [
    ("/", "%2F", "/"),                   # a new segment in a path; data in a query
    ("?", "%3F", "?"),
    ("&", "&", "%26"),                   # would split a key=value pair
    ("=", "=", "%3D"),
    ("+", "+", "%2B"),                   # form decoders read + as a space
    ("#", "%23", "%23"),                 # the fragment, everywhere
    ("%", "%25", "%25"),                 # a value is never taken as already encoded
    (" ", "%20", "%20"),
    ('"', "%22", "%22"),
    ("\n", "%0A", "%0A"),
    ("\x00", "%00", "%00"),
    ("ü", "%C3%BC", "%C3%BC"),           # UTF-8 bytes, upper-case hex
    ("[]{}|\\^`<>", "%5B%5D%7B%7D%7C%5C%5E%60%3C%3E", "%5B%5D%7B%7D%7C%5C%5E%60%3C%3E"),
])
def test_what_is_encoded_in_a_path_segment_and_in_a_query_value(char, path, query):
    assert escape(char, "path") == path
    assert escape(char, "query") == query


def test_every_byte_outside_the_rule_is_percent_encoded():
    literal_in_path = set((string.ascii_letters + string.digits + "-._~" + BOTH + "&+=").encode())
    for byte in range(256):
        out = escape_bytes(bytes([byte]), "path")
        assert out == (bytes([byte]) if byte in literal_in_path else b"%%%02X" % byte), byte


def test_the_other_kinds():
    assert escape('a"b\\c\x01\n', "json") == 'a\\"b\\\\c\\u0001\\u000a'
    assert escape("a\r\nb", "header") == "ab"
    assert escape("a\r\n b/", "raw") == "a\r\n b/"


def test_python_renders_with_the_same_escaper():
    template = tpl.parse_template("/u/${users.name}?q=${users.name}", tpl.URL)
    value = "a b/c?d&e=f+g#ü"
    assert template.render(lambda slot: value) == f"/u/{escape(value, 'path')}?q={escape(value, 'query')}"


TRICKY = ["a b/c?d&e=f+g#h%i", "ü€ snow☃", "semi;colon:at@!$'()*,", "tab\there", "x"]


def test_the_engine_sends_path_and_query_slots_escaped_by_the_rule(tmp_path):
    server = RawServer(len(TRICKY))
    with open(tmp_path / "values.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["v"])
        writer.writerows([value] for value in TRICKY)
    (tmp_path / "plan.yaml").write_text(
        "name: escape\n"
        f"target: http://127.0.0.1:{server.port}\n"
        "load: {model: closed, vus: 1, duration: 1s}\n"
        "data:\n"
        "  values: {file: values.csv, order: sequential}\n"
        "scenarios:\n"
        "  - name: s\n"
        "    steps:\n"
        "      - {name: one, request: 'GET /p/${values.v}/end?q=${values.v}&x=1'}\n")
    plan = load_plan(str(tmp_path / "plan.yaml"))
    tables = FlowTables(compile_plan(plan))
    assert not tables.is_static
    run_engine([server.address()], tables, len(TRICKY), server)
    sent = [request.split(b" ")[1].decode("ascii") for request in server.requests[:len(TRICKY)]]
    path = plan.scenarios[0].steps[0].path
    assert sent == [f"/p/{escape(v, 'path')}/end?q={escape(v, 'query')}&x=1" for v in TRICKY]
    assert sent == [path.render(lambda slot, v=v: v) for v in TRICKY]      # Python renders the same bytes
