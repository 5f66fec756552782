"""What new connections cost, merged exactly across workers (issue 11).

The engine's snapshots carry (see the TLS contract in surge.core._tls):
- `connections_opened`: cumulative, connections established (TCP up and, for
  TLS, the handshake done);
- `connect` / `tls_handshake`: sparse histograms (µs) of that interval only,
  like `latency` (`tls_handshake` None without a TLS host);
- `handshakes` {"full", "resumed"}, `tls_errors` {reason: n}: cumulative
  (None / {} without TLS);
- `tls_session` {"protocol", "cipher", "group", "ktls"}: the first completed
  handshake's, or None.

So, as for latency: histograms are added over every interval of every worker,
counters are each worker's last report summed, and a second's count is the
difference of consecutive reports. Snapshots from before these keys (or from
an engine without TLS) simply lack them: everything here reads them with
.get() and treats a missing key as nothing happened.
"""
from __future__ import annotations

from surge.core._histogram import Histogram

CONNECT_KEY, HANDSHAKE_KEY = "connect", "tls_handshake"
# A result lists at most this many TLS error reasons; the rest are added under "other".
MAX_TLS_ERROR_REASONS = 16
OTHER_REASON = "other"


def histogram_of(snapshots, key: str) -> Histogram:
    """Every interval's `key` histogram in `snapshots` added (an empty one when none has it);
    also what RunRecord.total_histogram adds for latency."""
    total = Histogram()
    for snap in snapshots:
        sparse = snap.get(key)
        if sparse:
            total.add_sparse(*sparse)
    return total


def connections_opened(snapshot: dict | None) -> int:
    """A cumulative snapshot's connections established so far (0 before the key existed)."""
    return int((snapshot or {}).get("connections_opened") or 0)


def interval_opened(snaps: list[tuple[dict, dict | None]]) -> int:
    """Connections opened in one second: each worker's report minus its previous one."""
    return sum(connections_opened(snap) - connections_opened(previous) for snap, previous in snaps)


def point_fields(snaps: list[tuple[dict, dict | None]]) -> dict:
    """A time-series point's connection keys: connections_opened, and the
    interval's connect / handshake histograms (encoded) when it had any."""
    fields = {"connections_opened": interval_opened(snaps)}
    for key, name in ((CONNECT_KEY, "hdr_connect"), (HANDSHAKE_KEY, "hdr_tls_handshake")):
        hist = histogram_of((snap for snap, _ in snaps), key)
        if hist.total_count:
            fields[name] = hist.encode()
    return fields


def exhausted_totals(latest: list) -> dict:
    """The totals' `connect_exhausted` {"ports": n, "fds": n}: connects that failed
    for want of a source port or a file descriptor (src/run/limits.py); {} when none."""
    ports = fds = 0
    for snap in latest:
        counts = (snap or {}).get("connect_exhausted") or {}
        ports += int(counts.get("ports", 0))
        fds += int(counts.get("fds", 0))
    return {"connect_exhausted": {"ports": ports, "fds": fds}} if ports or fds else {}


def has_tls(snapshots) -> bool:
    """Whether the engine ran a TLS host (it reports handshakes, possibly 0, only then)."""
    return any(snap.get("handshakes") is not None for snap in snapshots)


def _merged_errors(latest: list[dict]) -> dict[str, int]:
    errors: dict[str, int] = {}
    for snap in latest:
        for reason, n in (snap.get("tls_errors") or {}).items():
            errors[str(reason)] = errors.get(str(reason), 0) + int(n)
    ranked = sorted(errors.items(), key=lambda kv: (-kv[1], kv[0]))
    if len(ranked) <= MAX_TLS_ERROR_REASONS:
        return dict(ranked)
    kept = dict(ranked[:MAX_TLS_ERROR_REASONS - 1])
    kept[OTHER_REASON] = kept.get(OTHER_REASON, 0) + sum(n for _, n in ranked[MAX_TLS_ERROR_REASONS - 1:])
    return kept


def tls_section(workers: list[list[dict]], options: list) -> dict | None:
    """The result's "tls" section, or None when no host was https.

    `workers`: each worker's snapshots in order (ticks, then the final one);
    `options`: the TlsOptions of every https host (surge.plan.tls), whose
    insecure and resume flags say what was asked. verify is true only when
    every https host verified its certificate."""
    every = [snap for snaps in workers for snap in snaps]
    if not options and not has_tls(every):
        return None
    latest = [snaps[-1] for snaps in workers if snaps]
    session = next((snap["tls_session"] for snap in every if snap.get("tls_session")), None) or {}
    full = sum(int((snap.get("handshakes") or {}).get("full", 0)) for snap in latest)
    resumed = sum(int((snap.get("handshakes") or {}).get("resumed", 0)) for snap in latest)
    return {
        "verify": not any(getattr(o, "insecure", False) for o in options),
        "protocol": session.get("protocol"),
        "cipher": session.get("cipher"),
        "group": session.get("group"),
        "ktls": bool(session.get("ktls", False)),
        # which directions the kernel took over, where the engine says
        **{key: bool(session[key]) for key in ("ktls_send", "ktls_recv") if key in session},
        "resume": all(getattr(o, "resume", True) for o in options),
        "handshakes": {"full": full, "resumed": resumed},
        "errors": _merged_errors(latest),
    }


def tls_options(workload) -> list:
    """The TlsOptions of the workload's https hosts (none for plain http)."""
    hosts = getattr(workload, "hosts", None) or (workload.target,)
    found = []
    for host in hosts:
        options = getattr(host, "tls", None)
        if options is not None and options not in found:
            found.append(options)
    return found
