"""Source addresses (`--bind`) and the limits a run can run out of (issue 15 item 6).

Each connection's 4-tuple (source address, source port, target address, target
port) must be unique, so one source address reaches one target address and port
with at most the ephemeral range's ports (net.ipv4.ip_local_port_range, ~28k by
default); closed connections also sit in TIME_WAIT for 60 s, which is what
`--disable-keepalive` runs fill.  `--bind ADDR[,ADDR...]` spreads connections over
several source addresses (connection i of the run uses address i mod N; on
loopback every 127.0.0.x works), each with its own port range.  The engine binds
before it connects with IP_BIND_ADDRESS_NO_PORT, so the port is still chosen at
connect time per 4-tuple (a plain bind would reserve it for every target).

Every socket is a file descriptor, and a worker may hold at most RLIMIT_NOFILE's
hard limit (it raises its soft limit to that).

What can be known before the start is checked then (`problems`: exit 2, one line
each: what would run out, the current limit, the fix); what runs out during the
run (TIME_WAIT, another process's sockets) is counted by the engine as connect
errors by cause (`connect_exhausted` in the totals) and said in one line at the
end (`exhaustion_lines`).
"""
from __future__ import annotations

import ipaddress
import math
import resource
import socket

PORT_RANGE_FILE = "/proc/sys/net/ipv4/ip_local_port_range"
FD_MARGIN = 64              # a worker's own descriptors besides its connections (epoll, pipes, timers, files)


class BindError(ValueError):
    """A --bind value that cannot be used; the message is one line."""


def parse_bind(text: str) -> tuple[tuple[int, bytes, str], ...]:
    """`--bind ADDR[,ADDR...]` as ((family, sockaddr bytes, address text), ...): each
    an IP address of this machine (bound once here, port 0, to prove it)."""
    found = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            raise BindError(f"--bind: empty address in {text!r}; give ADDR[,ADDR...], e.g. 127.0.0.2,127.0.0.3")
        try:
            address = ipaddress.ip_address(part.strip("[]"))
        except ValueError:
            raise BindError(f"--bind: {part!r} is not an IP address; give ADDR[,ADDR...], "
                            "e.g. 10.0.0.5,10.0.0.6 or 127.0.0.2") from None
        if address.is_unspecified or address.is_multicast:
            # bind() accepts both, but 0.0.0.0/:: picks no source (the same as no --bind) and
            # a multicast address is no TCP source: the run would go on as if --bind were not given.
            kind = "the unspecified address" if address.is_unspecified else "a multicast address"
            raise BindError(f"--bind: {address} is {kind}, not a source address; give addresses of this "
                            "machine's interfaces (ip -br addr), e.g. 10.0.0.5,10.0.0.6 or 127.0.0.2")
        family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((str(address), 0))
            except OSError as exc:
                raise BindError(f"--bind: cannot use {address} as a source address ({exc.strerror}): "
                                "is it an address of this machine? (ip -br addr)") from None
        found.append((family, _sockaddr(family, str(address)), str(address)))
    if len({text for _, _, text in found}) != len(found):
        raise BindError(f"--bind: an address is given twice in {text!r}")
    return tuple(found)


FAMILY_NAMES = {socket.AF_INET: "IPv4", socket.AF_INET6: "IPv6"}


def bind_families(binds, hosts) -> str | None:
    """Whether --bind's addresses fit the hosts' families, once the addresses
    are chosen (before the start): the engine gives a connection only a source
    address of its host's family (an IPv6 source cannot reach an IPv4 target).

    binds: ((family, sockaddr, text), ...) as parse_bind gives them; hosts:
    ((family, printable address), ...) of each host the run talks to.
    Raises BindError (exit 2) when a host has no source address of its
    family; returns a warning line naming the addresses no host can use (None
    when every one is used)."""
    if not binds:
        return None
    given = {family for family, _, _ in binds}
    for family, where in hosts:
        if family not in given:
            other = " and ".join(sorted(FAMILY_NAMES.get(f, str(f)) for f in given))
            name = FAMILY_NAMES.get(family, str(family))
            example = "127.0.0.2" if family == socket.AF_INET else "::1"
            raise BindError(f"--bind {','.join(text for _, _, text in binds)}: no {name} address, and the target "
                            f"{where} is {name} (an {other} source cannot reach it): give an {name} source "
                            f"address, e.g. {example}")
    used = {family for family, _ in hosts}
    skipped = [text for family, _, text in binds if family not in used]
    if not skipped:
        return None
    families = " and ".join(sorted(FAMILY_NAMES.get(f, str(f)) for f in used))
    return (f"--bind: {', '.join(skipped)} skipped: not {families} like the target "
            f"{', '.join(sorted({where for _, where in hosts}))}; connections use "
            f"{', '.join(text for family, _, text in binds if family in used)}")


def _sockaddr(family: int, address: str) -> bytes:
    """The C sockaddr_in / sockaddr_in6 for address, port 0 (what bind() takes)."""
    import struct
    if family == socket.AF_INET:
        return struct.pack("=HH4s8x", socket.AF_INET, 0, socket.inet_pton(family, address))
    return struct.pack("=HHI16sI", socket.AF_INET6, 0, 0, socket.inet_pton(family, address), 0)


def port_range() -> tuple[int, int] | None:
    """The kernel's ephemeral port range (low, high), or None when it cannot be read."""
    try:
        with open(PORT_RANGE_FILE) as f:
            low, high = (int(x) for x in f.read().split()[:2])
    except (OSError, ValueError):
        return None
    return low, high


def ports_per_source() -> int | None:
    """Source ports one source address has towards one target address and port."""
    found = port_range()
    return None if found is None else found[1] - found[0] + 1


def fd_hard_limit() -> int | None:
    """RLIMIT_NOFILE's hard limit (a worker raises its soft limit to it); None: unlimited."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return None if hard == resource.RLIM_INFINITY else hard


def problems(workload, option_spelling: str = "-c") -> list[str]:
    """What would run out before the first request is sent, one line each."""
    found = []
    load, workers = workload.load, max(1, workload.workers)
    hosts = max(1, len(getattr(workload, "hosts", ()) or (workload.target,)))
    per_worker = math.ceil(load.users / workers) * hosts
    hard = fd_hard_limit()
    if hard is not None and per_worker + FD_MARGIN > hard:
        needed_workers = math.ceil(load.users * hosts / max(1, hard - FD_MARGIN))
        found.append(f"{option_spelling} {load.users:,}: each of {workers} worker{'s' * (workers != 1)} needs "
                     f"{per_worker + FD_MARGIN:,} file descriptors ({per_worker:,} connections + {FD_MARGIN}), "
                     f"the limit is {hard:,} (ulimit -Hn): raise it (ulimit -n {per_worker + FD_MARGIN}, as "
                     f"root or in limits.conf/LimitNOFILE=) or use -w {needed_workers} or more")
    ports = ports_per_source()
    sources = max(1, len(workload.source_addresses or ()))
    if ports is not None and load.users > ports * sources:
        low, high = port_range()
        more = math.ceil(load.users / ports)
        found.append(f"{option_spelling} {load.users:,}: each connection to one target needs its own source port, "
                     f"and {'each of the ' + str(sources) + ' source addresses has' if sources > 1 else 'one source address has'} "
                     f"{ports:,} (net.ipv4.ip_local_port_range {low} {high}): give {more} or more with "
                     f"--bind (e.g. {_example_binds(more)}) or widen the range (sysctl -w "
                     f"net.ipv4.ip_local_port_range='1024 65535')")
    return found


def _example_binds(count: int) -> str:
    return ",".join(f"127.0.0.{i}" for i in range(1, min(count, 3) + 1)) + (",..." if count > 3 else "")


def exhaustion_lines(totals: dict, config: dict) -> list[str]:
    """One line per resource that ran out during the run (the engine's counts in
    totals["connect_exhausted"]), with the current limit and the fix."""
    exhausted = totals.get("connect_exhausted") or {}
    lines = []
    if exhausted.get("ports"):
        ports = ports_per_source()
        low_high = port_range()
        sources = len(config.get("bind") or ()) or 1
        limit = (f"{sources} source address{'es' * (sources > 1)} x {ports:,} ports "
                 f"(net.ipv4.ip_local_port_range {low_high[0]} {low_high[1]})" if ports else "the ephemeral ports")
        why = " and connections closed in the last 60 s wait in TIME_WAIT" if config.get("keepalive") is False else ""
        lines.append(f"ran out of source ports: {exhausted['ports']:,} connects failed (EADDRNOTAVAIL); the limit is "
                     f"{limit} per target{why}: add source addresses with --bind (e.g. 127.0.0.2,127.0.0.3 on "
                     "loopback), widen the range (sysctl -w net.ipv4.ip_local_port_range='1024 65535')"
                     + (", or keep connections alive" if why else ""))
    if exhausted.get("fds"):
        hard = fd_hard_limit()
        limit = f"{hard:,} per worker (ulimit -Hn)" if hard else "the system-wide fs.file-max"
        lines.append(f"ran out of file descriptors: {exhausted['fds']:,} connects failed (EMFILE/ENFILE); the "
                     f"limit is {limit}: raise it (ulimit -n) or use more workers (-w)")
    return lines
