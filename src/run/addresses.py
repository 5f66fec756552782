"""Choosing the address a run talks to, before any load is sent.

A name can resolve to several addresses (`localhost` is often ::1 first, then
127.0.0.1), and a target may listen on only one of them.  Every address
getaddrinfo returns is tried in its order, Happy-Eyeballs style (RFC 8305):
the next attempt starts when the previous one failed or has not answered
within STAGGER_S, and the first that accepts wins.  The probe sockets are
closed before the workers start, and no request is sent on them.
"""
from __future__ import annotations

import errno
import os
import selectors
import socket
import struct
import time
from dataclasses import dataclass

from surge.plan.model import host_port

STAGGER_S = 0.25        # RFC 8305's recommended "Connection Attempt Delay"


class AddressError(RuntimeError):
    """No address could be resolved or connected (the supervisor makes it a RunError, exit 1)."""


@dataclass(frozen=True)
class Address:
    family: int
    sockaddr: tuple      # as getaddrinfo gives it: (ip, port) or (ip, port, flowinfo, scope_id)

    @property
    def printable(self) -> str:
        """'127.0.0.1:8080' or '[::1]:8080'."""
        return host_port(self.sockaddr[0], self.sockaddr[1])

    def packed(self) -> bytes:
        """The C struct sockaddr_in / sockaddr_in6 for the engine's connect()."""
        return pack_sockaddr(self.family, self.sockaddr)


@dataclass(frozen=True)
class Choice:
    """The address chosen for a host, and why the ones before it were not."""
    address: Address
    skipped: tuple[tuple[Address, str], ...] = ()     # (address, short reason), in the order tried

    @property
    def note(self) -> str | None:
        """'[::1]:8080 refused' (None when the first address was taken)."""
        if not self.skipped:
            return None
        return ", ".join(f"{address.printable} {reason}" for address, reason in self.skipped)

    def describe(self) -> dict:
        """The keys a result's config shows: "address" and, when one was skipped, "address_note"."""
        return {"address": self.address.printable, **({"address_note": self.note} if self.note else {})}


def pack_sockaddr(family: int, sockaddr: tuple) -> bytes:
    ip, port = sockaddr[0], sockaddr[1]
    if family == socket.AF_INET:
        return struct.pack("=H", family) + struct.pack("!H", port) + socket.inet_pton(family, ip) + bytes(8)
    flowinfo, scope_id = sockaddr[2], sockaddr[3]
    ip = ip.split("%", 1)[0]            # the zone travels as scope_id
    return (struct.pack("=H", family) + struct.pack("!HI", port, flowinfo)
            + socket.inet_pton(family, ip) + struct.pack("=I", scope_id))


def lookup(host: str, port: int) -> list[Address]:
    """Every stream address of host:port, in getaddrinfo's order, without repeats."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise AddressError(f"cannot resolve host {host!r}: {exc.strerror}") from None
    except UnicodeError:                # a name IDNA cannot encode
        raise AddressError(f"cannot resolve host {host!r}: not a valid host name") from None
    addresses = []
    for family, _, _, _, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            address = Address(family, tuple(sockaddr))
            if address not in addresses:
                addresses.append(address)
    if not addresses:
        raise AddressError(f"cannot resolve host {host!r}: no IPv4 or IPv6 address")
    return addresses


def _reason(code: int) -> str:
    if code == errno.ECONNREFUSED:
        return "refused"
    return (os.strerror(code) or f"error {code}").lower()


def choose(addresses: list[Address], timeout_s: float, stagger_s: float = STAGGER_S) -> Choice:
    """Connect to the addresses in order, staggered; the first that accepts wins.

    An attempt that fails starts the next one at once; one still unanswered
    after `stagger_s` lets the next start beside it.  When every attempt
    failed or `timeout_s` passed, AddressError lists each address and why."""
    selector = selectors.DefaultSelector()
    waiting = list(addresses)
    pending: dict[socket.socket, Address] = {}
    failed: dict[Address, str] = {}
    started: set[Address] = set()
    winner = None
    deadline = time.monotonic() + timeout_s
    next_start = time.monotonic()
    try:
        while (waiting or pending) and winner is None:
            now = time.monotonic()
            if now >= deadline:
                break
            if waiting and (not pending or now >= next_start):
                address = waiting.pop(0)
                started.add(address)
                sock, code = _start_connect(address)
                if sock is None:
                    failed[address] = _reason(code)
                    continue
                if code == 0:
                    sock.close()
                    winner = address
                    break
                selector.register(sock, selectors.EVENT_WRITE, address)
                pending[sock] = address
                next_start = now + stagger_s
            wait = deadline - now
            if waiting:
                wait = min(wait, max(0.0, next_start - now))
            done = []
            for key, _ in selector.select(wait):
                sock = key.fileobj
                code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                done.append((addresses.index(key.data), key.data, code))
                selector.unregister(sock)
                del pending[sock]
                sock.close()
            for _, address, code in sorted(done):     # same wake-up: the earlier address wins
                if code == 0 and winner is None:
                    winner = address
                elif code != 0:
                    failed[address] = _reason(code)
                    next_start = time.monotonic()    # a failure starts the next attempt at once
    finally:
        for sock in pending:
            sock.close()
        selector.close()
    if winner is not None:
        tried_before = addresses[:addresses.index(winner)]
        skipped = tuple((a, failed.get(a, f"no answer within {stagger_s * 1000:g}ms")) for a in tried_before)
        return Choice(winner, skipped)
    def why(a: Address) -> str:
        if a in failed:
            return failed[a]
        return f"no answer within {timeout_s:g}s" if a in started else "not tried within the timeout"
    reasons = [f"{a.printable} {why(a)}" for a in addresses]
    raise AddressError("; ".join(reasons))


def _start_connect(address: Address) -> tuple[socket.socket | None, int]:
    """A non-blocking connect under way: (socket, 0 when already connected or EINPROGRESS)."""
    try:
        sock = socket.socket(address.family, socket.SOCK_STREAM)
    except OSError as exc:              # e.g. no IPv6 on this machine
        return None, exc.errno or errno.EAFNOSUPPORT
    sock.setblocking(False)
    code = sock.connect_ex(address.sockaddr)
    if code in (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN):
        return sock, errno.EINPROGRESS
    if code != 0:
        sock.close()
        return None, code
    return sock, 0
