"""A plan's `hosts:` and `tls:` sections: which TLS options each https host gets.

    tls:                                  # every https host (the command line's TLS flags override it)
      cacert: ca.pem                      # relative paths: from the plan file's folder
    hosts:
      auth:
        url: https://auth.internal:9443
        tls: {cert: client.pem, key: client.key}    # over the top-level keys, key by key
    scenarios:
      - steps:
          - request: POST auth:/login                 # a named host (its url's path is the prefix)
          - request: GET https://auth.internal:9443/me   # the same host: an absolute URL of its origin

An https URL whose origin no host names gets the top-level options; an http
host gets none (a `tls:` on one is a problem), so a plan may mix both.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from surge.plan.checker import Checker, show
from surge.plan.model import Target
from surge.plan.request import PlanError, parse_target
from surge.plan.template import TemplateError, parse_template
from surge.plan.tls import (BOOL_FIELDS, FILE_FIELDS, TLS_VERSIONS, VERSION_FIELDS, TlsOptions, context_problem,
                            version_text)

HOST_KEYS = ("url", "tls", "auth")
TLS_KEYS = TlsOptions.field_names()
HOST_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*\Z")
# A step's request to a named host: "auth:/login" (never "://", so no URL reads like this).
NAMED_REQUEST = re.compile(r"^([A-Za-z_][A-Za-z0-9_-]*):(/.*)?\Z", re.S)
RESERVED_NAMES = ("http", "https")
# Problems that two fields share: reported where either is set.
_RELATED = {"cert": "key", "key": "cert", "tls_min": "tls_max", "tls_max": "tls_min"}


def _origin(target: Target) -> tuple:
    return (target.scheme, target.host.lower(), target.port)


@dataclass
class HostTable:
    """The named hosts and the options every other https host gets."""
    named: dict[str, Target] = field(default_factory=dict)     # name -> its base URL (path, tls)
    default_tls: TlsOptions = TlsOptions()
    # Where each TLS options' own keys were written (for OpenSSL's complaints): name -> field path
    tls_paths: dict[str, tuple] = field(default_factory=dict)
    top_path: tuple | None = None           # ("tls",) when the plan has a top-level block
    auth: dict = field(default_factory=dict)    # origin -> the host's AuthSpec (auth:, or its url's user:password@)

    def auth_of(self, host: Target):
        """The auth of a named host of this origin (None: none said)."""
        return self.auth.get(_origin(host))

    def resolve(self, target: Target) -> Target:
        """`target` with the TLS options of its host: a named host of its origin,
        else the top-level options for https, none for http."""
        for host in self.named.values():
            if _origin(host) == _origin(target):
                return Target(target.scheme, target.host, target.port, target.path, tls=host.tls)
        tls = self.default_tls if target.scheme == "https" else None
        return Target(target.scheme, target.host, target.port, target.path, tls=tls)

    def where(self, host: Target) -> tuple:
        """The plan field whose keys decide this host's options (for a problem's FILE:LINE)."""
        for name, named in self.named.items():
            if _origin(named) == _origin(host) and name in self.tls_paths:
                return self.tls_paths[name]
        return self.top_path or ()


def check_hosts(c: Checker, root: dict, overrides: dict | None = None) -> HostTable:
    """The plan's `tls:` and `hosts:` sections (problems recorded in c).
    `overrides`: the command line's TLS fields, over the top-level block."""
    overrides = overrides or {}
    table = HostTable()
    top_values = {}
    if "tls" in root:
        table.top_path = ("tls",)
        top_values = tls_values(c, ("tls",), root["tls"])
        top = TlsOptions().overridden({**top_values, **overrides})
        report_problems(c, ("tls",), top, {k for k in top_values if k not in overrides})
    else:
        top = TlsOptions().overridden(overrides)
    table.default_tls = top
    if "hosts" not in root:
        return table
    hosts = c.mapping(("hosts",), root["hosts"], "a mapping of host names to {url: ..., tls: {...}}")
    if hosts is None:
        return table
    seen = {}
    for name, spec in hosts.items():
        path = ("hosts", name)
        if not isinstance(name, str) or not HOST_NAME.match(name) or name in RESERVED_NAMES:
            c.problem(path, "a host name is letters, digits, _ and - (not starting with a digit), "
                            "and not http or https")
            continue
        host = _check_host(c, path, spec, top)
        if host is None:
            continue
        if _origin(host) in seen:
            c.problem(path + ("url",), f"the same host as hosts.{seen[_origin(host)]} ({host.origin().url}); "
                                       f"name each host once")
            continue
        seen[_origin(host)] = name
        table.named[name] = host
        _host_auth(c, path, spec, host, table)
        if isinstance(spec, dict) and "tls" in spec:
            table.tls_paths[name] = path + ("tls",)
    return table


def _host_auth(c: Checker, path, spec: dict, host: Target, table: HostTable) -> None:
    """A named host's auth: its auth: block, or its url's user:password@ (not both)."""
    from surge.plan.auth import check_auth, from_credentials

    own = check_auth(c, path + ("auth",), spec["auth"]) if "auth" in spec else None
    from_url = from_credentials(host)
    if own is not None and from_url is not None:
        c.problem(path + ("auth",), "the url's user:password@ and auth: both set this host's auth: give one")
    if own or from_url:
        table.auth[_origin(host)] = own or from_url


def _check_host(c: Checker, path, value, top: TlsOptions) -> Target | None:
    spec = c.mapping(path, value, "{url: https://host:port, tls: {...}}")
    if spec is None:
        return None
    c.keys(path, spec, HOST_KEYS, required=("url",))
    if "url" not in spec:
        return None
    target = base_url(c, path + ("url",), spec["url"])
    if target is None:
        return None
    if "tls" not in spec:
        return target if target.scheme == "http" else Target(target.scheme, target.host, target.port,
                                                              target.path, target.username, target.password,
                                                              tls=top)
    # A host with problems stays named (they are recorded), so requests to it
    # do not add "no such host" to them.
    values = tls_values(c, path + ("tls",), spec["tls"])
    if target.scheme != "https":
        c.problem(path + ("tls",), f"applies only to https hosts; this host's url is {target.url}")
        return target
    options = top.overridden(values)
    report_problems(c, path + ("tls",), options, set(values))
    return Target(target.scheme, target.host, target.port, target.path, target.username, target.password,
                  tls=options)


def base_url(c: Checker, path, value) -> Target | None:
    """A base URL (the target, or a host's url): ${env.NAME} templates only, no query."""
    text = c.string(path, value, "a base URL like http://127.0.0.1:8080")
    if text is None:
        return None
    try:
        template = parse_template(text).resolve_env(c.environ)
    except TemplateError as exc:
        for problem in exc.problems:
            c.problem(path, problem)
        return None
    if not template.is_static:
        c.problem(path, f"a base URL can hold only ${{env.NAME}} templates, got {show(text)}")
        return None
    try:
        target = parse_target(template.literal, allow_credentials=True)   # user:password@: Basic auth
    except PlanError as exc:
        c.problem(path, str(exc).removeprefix("URL: "))
        return None
    if "?" in target.path:
        c.problem(path, f"a base URL has no query, got {show(template.literal)}")
        return None
    return target


def tls_values(c: Checker, path, value) -> dict:
    """The keys a `tls:` block sets, typed (file paths resolved from the plan's folder)."""
    block = c.mapping(path, value, f"a mapping of TLS options ({', '.join(TLS_KEYS)})")
    if block is None:
        return {}
    c.keys(path, block, TLS_KEYS)
    values = {}
    for key, raw in block.items():
        where = path + (key,)
        if key not in TLS_KEYS:
            continue
        if key in BOOL_FIELDS:
            found = c.boolean(where, raw)
        elif key in VERSION_FIELDS:
            found = version_text(raw)
            if found not in TLS_VERSIONS:
                c.problem(where, f"got {show(raw)}, allowed: {', '.join(TLS_VERSIONS)} (a string: \"1.3\")")
                found = None
        else:
            found = c.string(where, raw, "a string" if key not in FILE_FIELDS else "a file path")
            if found is not None and key in FILE_FIELDS + ("keylog",) and found.strip():
                found = os.path.normpath(os.path.join(c.plan_dir, os.path.expanduser(found)))
        if found is not None:
            values[key] = found
    return values


def report_problems(c: Checker, path, options: TlsOptions, own: set) -> bool:
    """Record the problems of `options` that the keys in `own` are part of; True if any."""
    found = False
    for name, message in options.problems():
        if name in own or _RELATED.get(name) in own:
            c.problem(path + (name,) if name in own else path, message)
            found = True
    return found


def named_request(first: str, table: HostTable | None):
    """('auth', '/login') for "auth:/login" naming a host of the plan, else None."""
    match = NAMED_REQUEST.match(first)
    if match is None or table is None or match.group(1) not in table.named:
        return None
    return match.group(1), match.group(2) or "/"


def check_contexts(c: Checker, table: HostTable, hosts) -> None:
    """What OpenSSL says against each https host's options (a key that does not
    match its certificate, an unknown cipher or group), once per distinct set."""
    seen = set()
    for host in hosts:
        if host.scheme != "https" or host.tls is None:
            continue
        key = (host.tls, host.tls.server_name(host.host))
        if key in seen:
            continue
        seen.add(key)
        problem = context_problem(host.tls, host.host)
        if problem:
            c.problem(table.where(host), problem)
