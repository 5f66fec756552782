"""The engine's cookie jar (src/core/cookies.pxi), through its test hook: RFC 6265
section 5's parsing, storage and matching rules, one by one."""
import calendar
import email.utils
import time

import pytest

from surge.core._engine import CookieJarProbe, cookie_date

SHOP, WWW, API_HTTPS, OTHER, IP = range(5)
HOSTS = [(b"shop.example", False, False), (b"www.shop.example", False, False),
         (b"api.shop.example", True, False), (b"other.example", False, False), (b"127.0.0.1", False, True)]


@pytest.fixture
def jar():
    return CookieJarProbe(HOSTS)


def test_a_cookie_goes_back_to_the_host_that_set_it_only(jar):
    jar.receive(WWW, b"/", b"sid=abc")
    assert jar.header(WWW, b"/") == b"sid=abc"
    assert jar.header(SHOP, b"/") is None          # host-only: not the parent
    assert jar.header(API_HTTPS, b"/") is None     # nor a sibling
    assert jar.header(OTHER, b"/") is None


def test_a_domain_cookie_goes_to_the_domain_and_every_name_under_it(jar):
    jar.receive(WWW, b"/", b"d=1; Domain=.Shop.Example")
    assert jar.cookies()[0][2:5] == (b"shop.example", b"/", False)
    for host in (SHOP, WWW, API_HTTPS):
        assert jar.header(host, b"/") == b"d=1"
    assert jar.header(OTHER, b"/") is None


def test_a_domain_the_host_is_not_under_is_refused(jar):
    jar.receive(WWW, b"/", b"a=1; Domain=other.example")
    jar.receive(WWW, b"/", b"b=1; Domain=example")         # a bare label: no public suffix list
    jar.receive(WWW, b"/", b"c=1; Domain=hop.example")     # "shop.example" ends with it, not at a dot
    assert jar.count == 0


def test_an_ip_host_takes_only_its_own_address_as_domain(jar):
    jar.receive(IP, b"/", b"a=1; Domain=0.0.1")
    assert jar.count == 0
    jar.receive(IP, b"/", b"b=2; Domain=127.0.0.1")
    assert jar.header(IP, b"/") == b"b=2"
    assert jar.cookies()[0][4] is True                    # host-only


@pytest.mark.parametrize("request_path, default", [
    (b"/", b"/"), (b"/login", b"/"), (b"/a/b/c", b"/a/b"), (b"/a/b/", b"/a/b"), (b"/a?x=/y/z", b"/"),
    (b"/a/b?next=/c", b"/a")])
def test_without_a_path_attribute_the_default_path_is_the_request_directory(jar, request_path, default):
    jar.receive(SHOP, request_path, b"k=v")
    assert jar.cookies()[0][3] == default


def test_path_matching_follows_section_5_1_4(jar):
    jar.receive(SHOP, b"/", b"k=v; Path=/docs")
    assert jar.header(SHOP, b"/docs") == b"k=v"
    assert jar.header(SHOP, b"/docs/") == b"k=v"
    assert jar.header(SHOP, b"/docs/web?q=1") == b"k=v"
    assert jar.header(SHOP, b"/docsets") is None
    assert jar.header(SHOP, b"/") is None
    assert jar.header(SHOP, b"/Docs") is None             # paths are case-sensitive


def test_a_path_attribute_not_starting_with_a_slash_means_the_default_path(jar):
    jar.receive(SHOP, b"/a/b", b"k=v; Path=docs")
    assert jar.cookies()[0][3] == b"/a"


def test_longer_paths_go_first_then_older_cookies(jar):
    jar.receive(SHOP, b"/", b"root=1; Path=/")
    jar.receive(SHOP, b"/", b"deep=2; Path=/a/b")
    jar.receive(SHOP, b"/", b"mid=3; Path=/a")
    jar.receive(SHOP, b"/", b"root2=4; Path=/")
    assert jar.header(SHOP, b"/a/b/c") == b"deep=2; mid=3; root=1; root2=4"


def test_a_secure_cookie_is_sent_over_https_only(jar):
    jar.receive(WWW, b"/", b"s=1; Secure; Domain=shop.example")
    jar.receive(WWW, b"/", b"p=2; Domain=shop.example")
    assert jar.header(API_HTTPS, b"/") == b"s=1; p=2"
    assert jar.header(SHOP, b"/") == b"p=2"


def test_httponly_is_parsed_and_does_not_stop_sending(jar):
    jar.receive(SHOP, b"/", b"h=1; HttpOnly; Path=/")
    assert jar.cookies()[0][6] is True
    assert jar.header(SHOP, b"/x") == b"h=1"


def test_a_cookie_replaces_the_one_with_its_name_domain_and_path_keeping_its_place(jar):
    jar.receive(SHOP, b"/", b"a=1; Path=/")
    jar.receive(SHOP, b"/", b"b=2; Path=/")
    jar.receive(SHOP, b"/", b"a=3; Path=/")
    assert jar.header(SHOP, b"/") == b"a=3; b=2"
    jar.receive(SHOP, b"/", b"a=4; Path=/x")               # another path: another cookie
    assert jar.count == 3
    jar.receive(SHOP, b"/", b"a=5; Path=/; Domain=shop.example")   # the same domain, now not host-only
    assert jar.count == 3
    assert jar.header(WWW, b"/") == b"a=5"


def test_max_age_zero_or_negative_deletes(jar):
    jar.receive(SHOP, b"/", b"a=1; Path=/")
    jar.receive(SHOP, b"/", b"b=1; Path=/")
    jar.receive(SHOP, b"/", b"a=; Path=/; Max-Age=0")
    jar.receive(SHOP, b"/", b"b=x; Path=/; Max-Age=-5")
    assert jar.count == 0
    jar.receive(SHOP, b"/", b"c=1; Max-Age=0")              # deleting what is not there stores nothing
    assert jar.count == 0


def test_an_expires_date_in_the_past_deletes(jar):
    jar.receive(SHOP, b"/", b"a=1; Path=/")
    jar.receive(SHOP, b"/", b"a=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT")
    assert jar.count == 0


def test_max_age_expires_against_the_clock(jar):
    jar.receive(SHOP, b"/", b"a=1; Max-Age=2")
    jar.receive(SHOP, b"/", b"b=1")                         # a session cookie: never within a run
    assert jar.header(SHOP, b"/") == b"a=1; b=1"
    jar.advance(1.5)
    assert jar.header(SHOP, b"/") == b"a=1; b=1"
    jar.advance(1.0)
    assert jar.header(SHOP, b"/") == b"b=1"
    assert jar.count == 1                                   # the expired one was dropped


def test_an_expires_date_is_turned_into_the_run_clock(jar):
    soon = email.utils.formatdate(time.time() + 30, usegmt=True).encode()
    jar.receive(SHOP, b"/", b"a=1; Expires=" + soon)
    jar.advance(20)
    assert jar.header(SHOP, b"/") == b"a=1"
    jar.advance(15)
    assert jar.header(SHOP, b"/") is None


def test_max_age_wins_over_expires_whatever_the_order(jar):
    past = b"Expires=Thu, 01 Jan 1970 00:00:00 GMT"
    jar.receive(SHOP, b"/", b"a=1; " + past + b"; Max-Age=100")
    jar.receive(SHOP, b"/", b"b=1; Max-Age=100; " + past)
    assert jar.header(SHOP, b"/") == b"a=1; b=1"


def test_malformed_set_cookie_headers_are_ignored(jar):
    for header in (b"novalue", b"=v", b"  =v; Path=/", b"", b";a=b"):
        jar.receive(SHOP, b"/", header)
    assert jar.count == 0
    jar.receive(SHOP, b"/", b" spaced = value with spaces ;  path = /p ; max-age=oops")
    assert jar.cookies() == [(b"spaced", b"value with spaces", b"shop.example", b"/p", True, False, False)]


def test_an_empty_value_is_a_cookie(jar):
    jar.receive(SHOP, b"/", b"flag=")
    assert jar.header(SHOP, b"/") == b"flag="


def test_a_cookie_over_4096_bytes_is_ignored(jar):
    jar.receive(SHOP, b"/", b"big=" + b"x" * (4096 - 3))
    assert jar.count == 1
    jar.receive(SHOP, b"/", b"huge=" + b"x" * 4093)
    assert jar.count == 1


def test_a_full_jar_drops_the_cookie_set_longest_ago(jar):
    for n in range(50):
        jar.receive(SHOP, b"/", b"c%d=%d" % (n, n))
    assert jar.count == 50
    jar.receive(SHOP, b"/", b"new=1")
    assert jar.count == 50
    names = {c[0] for c in jar.cookies()}
    assert b"c0" not in names and b"new" in names and b"c1" in names


def test_a_full_jar_drops_expired_cookies_first(jar):
    jar.receive(SHOP, b"/", b"short=1; Max-Age=1")
    for n in range(49):
        jar.receive(SHOP, b"/", b"c%d=%d" % (n, n))
    jar.advance(2)
    jar.receive(SHOP, b"/", b"new=1")
    names = {c[0] for c in jar.cookies()}
    assert b"short" not in names and b"c0" in names and b"new" in names


def test_clearing_empties_the_jar(jar):
    jar.receive(SHOP, b"/", b"a=1")
    jar.clear()
    assert jar.count == 0 and jar.header(SHOP, b"/") is None
    jar.receive(SHOP, b"/", b"b=2")                         # the slots are reused
    assert jar.header(SHOP, b"/") == b"b=2"


def _unix(text: str) -> int:
    return calendar.timegm(time.strptime(text, "%Y-%m-%d %H:%M:%S"))


@pytest.mark.parametrize("text, expected", [
    (b"Wed, 21 Oct 2015 07:28:00 GMT", "2015-10-21 07:28:00"),          # RFC 1123
    (b"Wednesday, 21-Oct-15 07:28:00 GMT", "2015-10-21 07:28:00"),      # RFC 850, two-digit year
    (b"Wed Oct 21 07:28:00 2015", "2015-10-21 07:28:00"),               # asctime
    (b"21 oct 1999 7:8:9", "1999-10-21 07:08:09"),
    (b"Thu, 29 Feb 2024 23:59:59 GMT", "2024-02-29 23:59:59"),
    (b"Mon, 01 Jan 2069 00:00:00 GMT", "2069-01-01 00:00:00"),
    (b"01 Jan 70 00:00:00", "1970-01-01 00:00:00"),
    (b"Fri, 31 Dec 9999 23:59:59 GMT", "9999-12-31 23:59:59"),
])
def test_cookie_dates_parse_as_section_5_1_1_says(text, expected):
    assert cookie_date(text) == _unix(expected)


@pytest.mark.parametrize("text", [
    b"", b"tomorrow", b"Wed, 21 Oct 2015 GMT", b"Wed, 32 Oct 2015 07:28:00 GMT",
    b"Wed, 29 Feb 2023 07:28:00 GMT", b"Wed, 21 Foo 2015 07:28:00 GMT", b"Wed, 21 Oct 1600 07:28:00 GMT",
    b"Wed, 21 Oct 2015 24:00:00 GMT", b"Wed, 21 Oct 2015 07:60:00 GMT"])
def test_dates_that_are_not_dates_do_not_parse(text):
    assert cookie_date(text) is None


def test_an_expires_that_does_not_parse_is_ignored_not_the_cookie(jar):
    jar.receive(SHOP, b"/", b"a=1; Expires=someday")
    assert jar.header(SHOP, b"/") == b"a=1"
