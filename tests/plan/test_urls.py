"""Item 9 (URL part): every malformed URL is a one-line PlanError (exit 2), never an internal error."""
import pytest

from surge.plan.request import PlanError, parse_target
from tests.helpers import assert_one_line_error, run_surge

BAD_URLS = [
    ("http://[::1/", "cannot parse"),                    # urlsplit: Invalid IPv6 URL
    ("http://[zz]/", "not appear to be an IPv4 or IPv6 address"),   # urlsplit's ValueError
    ("http://[::1]x/", "cannot parse the host and port"),  # junk after the bracket (was taken as ::1:80)
    ("http://[::1]]/", "cannot parse the host and port"),
    ("http://::1:8080/", "IPv6 address goes in brackets"),
    ("http://host:0/", "invalid port"),                  # was silently port 80
    ("http://host:80:80/", "invalid port"),
    ("http://host:x/", "invalid port"),
    ("http://ho%st/", "not a host name"),
    ("http://" + "a" * 70 + "/", "label"),               # IDNA: label too long (was UnicodeError)
    ("http://.host/", "not a host name"),
    ("http://[1.2.3.4]/", "cannot be in brackets"),
    ("http://host/\x01", "control character"),
    ("http://host\x7f/", "control character"),
]


@pytest.mark.parametrize("url, fragment", BAD_URLS)
def test_parse_target_refuses_with_a_plan_error(url, fragment):
    with pytest.raises(PlanError) as info:
        parse_target(url)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("url, host, port", [
    ("http://[::1]:8082/", "::1", 8082),
    ("http://[fe80::1%25lo]:8080/x", "fe80::1%lo", 8080),
    ("http://host:/", "host", 80),
    ("http://Exämple.com/", "Exämple.com", 80),
    ("http://my_host.local.:9/", "my_host.local.", 9),
])
def test_good_hosts_still_parse(url, host, port):
    target = parse_target(url)
    assert (target.host, target.port) == (host, port)


def test_ipv6_authority_and_url_keep_brackets():
    target = parse_target("http://[::1]:8082/a?b")
    assert target.authority == "[::1]:8082"
    assert target.url == "http://[::1]:8082/a?b"


@pytest.mark.parametrize("url, fragment", [
    ("http://[::1/", "cannot parse"),
    ("http://[zz]/", "IPv6 address"),
    ("http://" + "a" * 70 + "/", "label"),
    ("http://host:0/", "invalid port"),
])
def test_cli_bad_url_is_one_line_exit_2(url, fragment):
    assert_one_line_error(run_surge("run", url, "-n", "1", json_result=False), 2, "URL", fragment)


def test_plan_host_urls_are_checked_the_same_way(tmp_path):
    plan = tmp_path / "bad_hosts.yaml"
    plan.write_text(
        "name: bad\n"
        "target: http://[::1/\n"
        "load: {model: closed, vus: 1, duration: 1s}\n"
        "scenarios:\n"
        "  - name: s\n"
        "    steps:\n"
        "      - {name: a, request: 'GET http://[zz]:80/x'}\n"
    )
    run = run_surge("run", str(plan), json_result=False)
    assert run.code == 2, run.stderr
    assert "internal error" not in run.stderr and "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert any(line.startswith(f"{plan}:2 target:") and "cannot parse" in line for line in lines), lines
    assert any(f"{plan}:7 scenarios[0].steps[0].request:" in line and "IPv6 address" in line for line in lines), lines


def test_a_non_ascii_host_name_goes_on_the_wire_in_its_idna_form():
    from surge.plan.build import url_workload
    from surge.plan.options import RunOptions
    from surge.run.flows import FlowTables
    tables = FlowTables(url_workload("http://bücher.example:8080/", RunOptions()).workload)
    assert b"Host: xn--bcher-kva.example:8080\r\n" in b"".join(tables.steps[0].head)     # the bytes sent
