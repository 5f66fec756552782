"""What the workers reported, and its exact merge into the result file's shape.

Histograms are merged by adding counts (never by averaging percentiles);
counters are cumulative per worker, so totals are sums of each worker's last
report and per-second figures are differences of consecutive reports.
"""
from __future__ import annotations

import datetime as _dt
import math
import os
import platform
import resource
import sys
import time

from surge import __version__
from surge.core._limits import ERROR_KINDS
from surge.core._histogram import Histogram
from surge.plan.describe import describe_config
from surge.plan.units import NS_PER_S
from surge.plan.workload import Workload
from surge.result.format import RESULT_FORMAT
from surge.result.latency import PERCENTILES, latency_summary  # noqa: F401 - re-exported (tests, bench)
from surge.run import connection_costs
from surge.run.failed_rule import (add_failed, failed_count, failed_fraction, failed_requests, is_failed_status,
                                   no_failed, snapshot_failed)
from surge.run.samples import SAMPLES_PER_S, QuarterReads, final_end_quarter
from surge.run.segment import WHOLE
from surge.run.start import derive_run_id
from surge.run.redirects import add_redirects, redirect_totals
from surge.run.retention import INTERVAL_HISTOGRAMS, LAG_S, SAMPLE_S, Series, fold



class WorkerRecord:
    """What one worker sent and the supervisor still holds: its snapshots of
    unfinished seconds (`ticks`, a second or two: surge.run.retention), the
    last snapshot of a finished one (`kept`: the deltas of its next second,
    and a dead worker's counts up to its last report), its Final."""

    def __init__(self, index: int):
        self.index = index
        self.ready = None           # its surge.run.messages.Ready once connected
        self.ticks: dict[int, dict] = {}    # second -> snapshot, of seconds not yet finished
        self.final: dict | None = None
        self.end_ns: int | None = None
        self.abandoned = 0
        self.failure: str | None = None
        self.lost_ns: int | None = None     # when its channel ended without a Final (it died)
        self.last_second = 0                # the latest second it reported
        self.kept: dict | None = None       # its snapshot of the latest finished second
        self.final_slot: int | None = None  # the second its Final was placed in (RunRecord.add_final)
        self.final_end_q: int | None = None     # the quarter its Final closes (surge.run.samples)
        self.flows: dict | None = None      # the flows of its latest finished snapshot that had them
        self.tls_session: dict | None = None    # the first completed handshake it reported

    def add_tick(self, k: int, snapshot: dict) -> None:
        self.ticks[k] = snapshot
        self.last_second = max(self.last_second, k)

    @property
    def done(self) -> bool:
        """It will send nothing more (its Final came, or it died or failed)."""
        return self.final is not None or self.lost_ns is not None or self.failure is not None

    def reported(self, k: int) -> bool:
        return self.last_second >= k

    def before(self, k: int) -> dict | None:
        """Its snapshot just before second k (deltas)."""
        earlier = [s for s in self.ticks if s < k]
        return self.ticks[max(earlier)] if earlier else self.kept

    def latest(self) -> dict | None:
        if self.final is not None:
            return self.final
        return self.ticks[max(self.ticks)] if self.ticks else self.kept

    def latest_flows(self) -> dict | None:
        """The flows of its latest snapshot that had them."""
        for snap in ([self.final] if self.final else []) + [self.ticks[k] for k in sorted(self.ticks, reverse=True)]:
            if snap.get("flows"):
                return snap["flows"]
        return self.flows

    def first_tls_session(self) -> dict | None:
        if self.tls_session is None:
            for snap in [self.ticks[k] for k in sorted(self.ticks)] + ([self.final] if self.final else []):
                if snap.get("tls_session"):
                    return snap["tls_session"]
        return self.tls_session


def _errors_total(snapshot: dict | None) -> int:
    return sum(snapshot["errors"].values()) if snapshot else 0


def machine_info() -> dict:
    cpu_model = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    if cpu_model is None:       # platform.processor() runs `uname -p`: only when /proc says nothing
        cpu_model = platform.processor() or "unknown"
    return {"cpu_model": cpu_model, "cpus": os.cpu_count(), "kernel": platform.release(),
            "python": platform.python_version(), "platform": sys.platform}


class RunRecord:
    """The raw record of a run; `to_result()` makes the result file's dict."""

    def __init__(self, workload: Workload, workers: list[WorkerRecord], addresses: dict | None = None):
        self.workload = workload
        self.workers = workers
        self.addresses = addresses or {}          # surge.run.supervisor.describe_addresses
        self.start_ns: int | None = None
        self.interrupted = False
        self.aborted_by: str | None = None          # the objective that stopped the run early
        self.watch_samples: dict[int, dict] = {}     # second -> --watch-pid sample
        self.started_at = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        # the result's "run" (which run this instance is part of; see run_identity and started)
        self.run: dict = {"id": None, "segment": None, "started_at_unix_ns": None, "plan_hash": None}
        self.segment = WHOLE            # --segment: this part's share (surge.run.segment)
        self.newest_second = 0          # the latest tick any worker sent
        # What the finished seconds left (surge.run.retention): their points, the
        # running whole-run histograms, the quarter reads not yet made samples.
        self.series = Series()
        self.finished_through = 0       # every second up to this one is in `series`
        self.running: dict[str, Histogram] = {}     # INTERVAL_HISTOGRAMS key -> every finished second's
        self.running_steps: tuple[list[Histogram], list[Histogram] | None] | None = None
        self.quarter_reads = QuarterReads()

    def add_tick(self, worker: WorkerRecord, k: int, snapshot: dict) -> None:
        """Worker's second k; every second that is then finished (surge.run.retention)
        becomes its point.  A late one (a second finished without it: LAG_S) joins
        the worker's first unfinished second."""
        if k > self.finished_through:
            self.quarter_reads.add(snapshot, k * SAMPLES_PER_S)
        self._place(worker, max(k, self.finished_through + 1), snapshot)
        worker.last_second = max(worker.last_second, k)
        self.newest_second = max(self.newest_second, k)
        self._finish_ready()

    def add_final(self, worker: WorkerRecord, snapshot: dict, end_ns: int, abandoned: int = 0) -> None:
        """Worker's final snapshot: it fills the second its end falls in (final_second)."""
        worker.final, worker.end_ns, worker.abandoned = snapshot, end_ns, abandoned
        if self.start_ns is None:
            return                          # stopped before the start: no second to fill
        slot = max(self.final_second(end_ns), self.finished_through + 1)
        worker.final_end_q = final_end_quarter(self, end_ns, snapshot.get("quarters"),
                                               worker.last_second * SAMPLES_PER_S)
        self.quarter_reads.add(snapshot, worker.final_end_q)
        self._place(worker, slot, snapshot)
        worker.final_slot = slot
        self._finish_ready()

    @staticmethod
    def _place(worker: WorkerRecord, slot: int, snapshot: dict) -> None:
        held = worker.ticks.get(slot)
        worker.ticks[slot] = fold([held, snapshot]) if held is not None else snapshot

    def _finish_ready(self) -> None:
        """Finish each second that every worker has gone past or will not reach."""
        while True:
            s = self.finished_through + 1
            if s >= self.newest_second:
                return
            if self.newest_second - s <= LAG_S and not all(w.done or w.last_second > s for w in self.workers):
                return
            self._finish(s)

    def _finish(self, s: int) -> None:
        """Second s as its point, step points and samples (one blob in the series);
        its histograms into the running ones; each worker keeps its snapshot."""
        pairs = [(w.ticks[s], w.before(s)) for w in self.workers if s in w.ticks]
        if pairs:
            entry = self._entry(s, float(s), pairs)
            entry["samples"] = self.quarter_reads.take(s * SAMPLES_PER_S)
            self.series.add(s, entry)
            self._add_running([snap for snap, _ in pairs])
        for w in self.workers:
            snap = w.ticks.pop(s, None)
            if snap is None:
                continue
            w.kept = snap
            if snap.get("flows"):
                w.flows = snap["flows"]
            if w.tls_session is None and snap.get("tls_session"):
                w.tls_session = snap["tls_session"]
        for k in [k for k in self.watch_samples if k <= s]:     # in the point now
            del self.watch_samples[k]
        self.finished_through = s

    def _entry(self, k: int, t_end: float, pairs: list[tuple[dict, dict | None]]) -> dict:
        steps = step_points(self, t_end, pairs) if self.shows_steps else None
        return {"point": self._point(k, t_end, pairs), "steps": steps, "samples": []}

    def _add_running(self, snapshots: list[dict]) -> None:
        for snap in snapshots:
            for key in INTERVAL_HISTOGRAMS:
                if snap.get(key):
                    self.running.setdefault(key, Histogram()).add_sparse(*snap[key])
        if not self.shows_steps:
            return                          # only flow_results reads them
        if self.running_steps is None:
            self.running_steps = _add_step_histograms(self, snapshots)
        else:
            _add_step_histograms(self, snapshots, self.running_steps)

    def pending(self) -> list[tuple[int, list[tuple[dict, dict | None]]]]:
        """The unfinished seconds: (second, [(snapshot, the one before it), ...])."""
        slots: dict[int, list[tuple[dict, dict | None]]] = {}
        for w in self.workers:
            previous = w.kept
            for k in sorted(w.ticks):
                slots.setdefault(k, []).append((w.ticks[k], previous))
                previous = w.ticks[k]
        return sorted(slots.items())

    def pending_snapshots(self) -> list[dict]:
        """Every snapshot not yet in a finished second (a Final before the start too)."""
        snaps = [snap for w in self.workers for snap in w.ticks.values()]
        return snaps + [w.final for w in self.workers if w.final is not None and w.final_slot is None]

    def series_output(self) -> tuple[list[dict], list[list[dict]], list[dict] | None]:
        """(timeseries points, each step's points, samples): the finished seconds
        read back and the unfinished ones made now, t capped at the run's end."""
        duration = self.duration_s()
        n_steps = len(self.workload.step_names)
        points, steps, quarters = [], [[] for _ in range(n_steps)], []

        def add(k: int, entry: dict) -> None:
            point = entry["point"]
            if k > duration and "interval_s" not in point:
                point["t"] = round(duration, 3)
            points.append(point)
            for i, step in enumerate(entry.get("steps") or ()):
                step["t"] = point["t"]
                steps[i].append(step)
            quarters.extend(entry.get("samples") or ())

        for k, entry in self.series.entries():
            add(k, entry)
        if self.start_ns is not None:
            for k, pairs in self.pending():
                add(k, self._entry(k, float(k) if k <= duration else round(duration, 3), pairs))
            reads = self.quarter_reads.copy()
            quarters.extend(reads.take())
            missing = reads.missing
        else:
            missing = True
        samples = None
        if quarters and not missing:
            newest = quarters[-1][0]
            samples = [{"t": min(q / SAMPLES_PER_S, round(duration, 3)), "requests": n, "hdr": hdr}
                       for q, n, hdr in quarters if q > newest - SAMPLE_S * SAMPLES_PER_S]
        return points, steps, samples

    def run_identity(self, launch, fingerprint: str) -> None:
        """What the result's run says before the start: the segment (with this
        part's share of connections and -n), the plan's fingerprint, the run id
        when one was given (a derived one comes with the start)."""
        self.segment = segment = launch.segment
        described = segment.describe()
        if described is not None:
            load = self.workload.load
            described["connections"] = segment.share(load.users)
            described["requests"] = segment.share(load.requests) if load.requests else None
        self.run.update(segment=described, plan_hash=fingerprint, id=launch.run_id)

    def started(self, decision) -> None:
        """The common start instant (a surge.run.start.StartDecision) and the run id."""
        self.run.update(id=decision.run_id, started_at_unix_ns=decision.start_unix_ns)
        self.started_at = _dt.datetime.fromtimestamp(decision.start_unix_ns / 1e9, _dt.timezone.utc).isoformat(
            timespec="seconds")

    def run_section(self) -> dict:
        """The result's "run".  A run stopped before it started has no start
        instant (null) and, unless one was given, an id derived from now."""
        if self.run["id"] is None:
            return {**self.run, "id": derive_run_id(time.time_ns(), self.run["plan_hash"] or "")}
        return dict(self.run)

    # ---- merges -------------------------------------------------------------
    @property
    def open_model(self) -> bool:
        return self.workload.model == "open"

    @property
    def shows_steps(self) -> bool:
        """Whether the result lists `steps`, `scenarios` and `step_timeseries`: a
        plan's does, a URL run's keeps its shape without them.  Presentation only:
        every run is counted the same way, from the engine's per-step counters
        (each step's own failed rule; a URL run's one step has the >= 400 rule)."""
        return self.workload.source.reports_steps

    def total_histogram(self, key: str = "latency") -> Histogram:
        """Every interval of every worker added: `latency`, or `latency_uncorrected`
        (open model: from the actual write instead of the intended instant)."""
        total = self.running[key].copy() if key in self.running else Histogram()
        total.add(connection_costs.histogram_of(self.pending_snapshots(), key))
        return total

    def duration_s(self) -> float:
        if self.start_ns is None:
            return 0.0
        ends = [w.end_ns for w in self.workers if w.end_ns]
        if not ends:                        # every worker died: up to its last tick
            ends = [self.start_ns + w.last_second * NS_PER_S for w in self.workers]
        return max(0.0, (max(ends) - self.start_ns) / NS_PER_S)

    def totals(self) -> dict:
        requests = bytes_in = bytes_out = 0
        statuses: dict[int, int] = {}
        errors = {kind: 0 for kind in ERROR_KINDS}
        for w in self.workers:
            snap = w.latest()
            if not snap:
                continue
            requests += snap["completed"]
            bytes_in += snap["bytes_in"]
            bytes_out += snap["bytes_out"]
            for status, n in snap["statuses"].items():
                statuses[status] = statuses.get(status, 0) + n
            for kind, n in snap["errors"].items():
                errors[kind] += n
        duration = self.duration_s()
        extra = {}
        if self.open_model:
            latest = [w.latest() for w in self.workers if w.latest()]
            extra = {"due": sum(snap["due"] for snap in latest),
                     "dropped": sum(snap["dropped"] for snap in latest),
                     "queued_at_stop": sum(w.final.get("queued_at_stop", 0) for w in self.workers if w.final)}
        failed = no_failed()            # each step's own rule (expect.status), every run alike
        allowed = self.step_allowed
        for w in self.workers:
            snap = w.latest()
            if snap:
                failed = add_failed(failed, snapshot_failed(snap, allowed))
        return {
            "requests": requests,
            "duration_s": round(duration, 6),
            "rps": round(requests / duration, 3) if duration > 0 else 0.0,
            "bytes_in": bytes_in,
            "bytes_out": bytes_out,
            "responses_by_status": {str(s): statuses[s] for s in sorted(statuses)},
            "errors": errors,
            "failed": failed,
            "error_rate": failed_fraction(failed, requests, errors),
            "in_flight_at_stop": sum(w.abandoned for w in self.workers),
            "connections_opened": sum(connection_costs.connections_opened(w.latest()) for w in self.workers),
            **connection_costs.exhausted_totals([w.latest() for w in self.workers]),
            **extra,
            **redirect_totals(self.step_counters()[0]),     # hops (surge.run.redirects)
        }

    def final_second(self, end_ns: int) -> int:
        """The slot a worker's final snapshot fills: the second its end falls in
        (a stop a few ms past a whole second joins that second), and in a timed
        run at most the deadline's second: a worker that stopped late on a busy
        machine must not make a second of its own after the run's end."""
        second = max(1, math.ceil((end_ns - self.start_ns) / NS_PER_S - 0.01))
        duration_ns = self.workload.load.duration_ns
        return min(second, max(1, math.ceil(duration_ns / NS_PER_S))) if duration_ns else second

    def timeseries(self) -> list[dict]:
        """One point per second, t = the end of its interval (the last may be partial;
        a long run's older ones a block each: surge.run.retention).

        Worker k-th ticks fill slot k; a worker's final snapshot fills the slot
        its end falls in (a stop a few ms past a whole second joins that second)."""
        return self.series_output()[0]

    def _point(self, k: int, t_end: float, snaps: list[tuple[dict, dict | None]]) -> dict:
        """Second k from each worker's snapshot ending in it (and the one before, for deltas);
        the snapshots of one worker in order."""
        hist = Histogram()
        errors = failed = 0
        statuses: dict[str, int] = {}
        workers = []
        start_s = k - 1
        interval_s = max(t_end - start_s, 1e-9)
        allowed = self.step_allowed
        for snap, previous in snaps:
            hist.add_sparse(*snap["latency"])
            errors += _errors_total(snap) - _errors_total(previous)
            for status, n in snap["statuses"].items():
                delta = n - (previous["statuses"].get(status, 0) if previous else 0)
                if delta:
                    statuses[str(status)] = statuses.get(str(status), 0) + delta
            # the same rule as the totals': each step's, on its cumulative counters
            failed += failed_count(snap, allowed) - (failed_count(previous, allowed) if previous else 0)
            usage, before = snap.get("usage"), (previous or {}).get("usage")
            if usage:
                cpu_s = usage["user_s"] + usage["sys_s"] - (before["user_s"] + before["sys_s"] if before else 0)
                workers.append({"index": snap.get("worker", len(workers)),
                                "cpu_percent": round(min(cpu_s / interval_s * 100, 100.0), 1) if before else None,
                                "rss_kb": usage.get("rss_kb")})
        p50, p99 = hist.values_at_percentiles((50, 99))
        point = {"t": t_end, "requests": hist.total_count, "errors": errors, "failed": failed, "p50": p50, "p99": p99,
                 "max": hist.max, "hdr": hist.encode(), "statuses": statuses,
                 "active_connections": sum(snap["open_connections"] for snap, _ in snaps), "workers": workers,
                 **connection_costs.point_fields(snaps)}
        profile = self.workload.load.profile
        if self.open_model:
            uncorrected = Histogram()
            for snap, _ in snaps:
                uncorrected.add_sparse(*snap["latency_uncorrected"])
            point["p50_uncorrected"], point["p99_uncorrected"] = uncorrected.values_at_percentiles((50, 99))
            point["hdr_uncorrected"] = uncorrected.encode()
            # this part's share of the schedule (the parts' targets add up to the whole run's)
            point["target"] = round(profile.count_between(start_s, t_end) / interval_s / self.segment.count, 3)
            point["due"] = sum(s["due"] - (p["due"] if p else 0) for s, p in snaps)
            point["dropped"] = sum(s["dropped"] - (p["dropped"] if p else 0) for s, p in snaps)
        elif profile is not None and profile.stages:
            target = profile.value_at(t_end)                        # connections (this part's share)
            point["target"] = round(target if self.segment.whole else self.segment.share(round(target)), 3)
        if self.watch_samples.get(k):
            point["watched"] = self.watch_samples[k]
        return point

    def workers_failed(self) -> list[dict]:
        """Each worker that died or could not run: its index, the cause, and
        `at_s`, when the supervisor saw it go (seconds since the start; null
        before the start); `last_report_s`, the end of the last second it
        reported (its counts and histograms up to there are in the result)."""
        failed = []
        for w in self.workers:
            if not w.failure:
                continue
            at_s = None
            if w.lost_ns is not None and self.start_ns is not None:
                at_s = round(max(0.0, (w.lost_ns - self.start_ns) / NS_PER_S), 3)
            failed.append({"index": w.index, "cause": w.failure, "at_s": at_s,
                           "last_report_s": w.last_second if self.start_ns is not None else None})
        return failed

    def resources(self) -> dict:
        workers = []
        for w in self.workers:
            snap = w.latest()
            if snap and "usage" in snap:
                workers.append({"index": w.index, **snap["usage"]})
        own = resource.getrusage(resource.RUSAGE_SELF)
        return {"workers": workers,
                "supervisor": {"user_s": own.ru_utime, "sys_s": own.ru_stime, "max_rss_kb": own.ru_maxrss}}

    @property
    def step_allowed(self) -> list[tuple[int, ...]]:
        """Each step's `expect.status` (() = the >= 400 rule), in flow order."""
        return [step.expect.status for step in self.workload.steps]

    def step_counters(self) -> tuple[list[dict], list[list[int]]]:
        """Per step, from each worker's last report: requests, statuses, errors,
        checks, failed; per scenario: [started, completed, aborted]."""
        names = self.workload.step_names
        steps = [{"scenario": scn, "step": name, "requests": 0, "responses_by_status": {},
                  "errors": {kind: 0 for kind in ERROR_KINDS}, "checks": 0, "check_failures": 0}
                 for scn, name in names]
        iterations = [[0, 0, 0] for _ in self.workload.scenarios]
        for w in self.workers:
            last = w.latest_flows()
            if last is None:
                continue
            for i, (responses, checks, failures, errors, statuses, _) in enumerate(last["steps"]):
                out = steps[i]
                out["requests"] += responses
                out["checks"] += checks
                out["check_failures"] += failures
                for kind, n in zip(ERROR_KINDS, errors):
                    out["errors"][kind] += n
                for status, n in statuses.items():
                    out["responses_by_status"][str(status)] = out["responses_by_status"].get(str(status), 0) + n
            for i, counts in enumerate(last["scenarios"]):
                for k in range(3):
                    iterations[i][k] += counts[k]
            add_redirects(steps, last)          # each step's hops (surge.run.redirects)
        for out, allowed in zip(steps, self.step_allowed):
            out["responses_by_status"] = dict(sorted(out["responses_by_status"].items(), key=lambda kv: int(kv[0])))
            out["failed"] = failed_requests(out["responses_by_status"], out["errors"], allowed)
        return steps, iterations

    def step_histograms(self) -> tuple[list[Histogram], list[Histogram] | None]:
        """Per step, every interval of every worker added: latency from the write,
        and (open model) from each step's intended instant (None otherwise)."""
        n_steps = len(self.workload.step_names)
        written = [h.copy() for h in self.running_steps[0]] if self.running_steps else None
        intended = ([h.copy() for h in self.running_steps[1]]
                    if self.running_steps and self.running_steps[1] is not None else None)
        if written is None or len(written) != n_steps:
            return _add_step_histograms(self, self.pending_snapshots())
        return _add_step_histograms(self, self.pending_snapshots(), (written, intended))

    def flow_results(self) -> dict:
        """Per step and per scenario (test plans): counters from each worker's
        last report, latency from every interval, merged exactly.  As for the
        whole run, `latency` is corrected in the open model (each step from its
        intended instant: flows.pxi chain_intended) with `latency_uncorrected`
        (from the step's own write) beside it; in the closed model it is from the write."""
        steps, iterations = self.step_counters()
        written, intended = self.step_histograms()
        return flow_rows(steps, iterations, written, intended, self.scenario_weights())

    def scenario_weights(self) -> list[tuple[str, float, float]]:
        """(name, weight, share) of each scenario, in plan order."""
        shares = self.workload.shares
        return [(scenario.name, scenario.weight, shares[scenario.name]) for scenario in self.workload.scenarios]

    def live_result(self) -> dict:
        """What objectives are evaluated on during the run: totals, latency,
        steps and scenarios so far (no time series)."""
        return {"totals": self.totals(), "latency": latency_summary(self.total_histogram()),
                **(self.flow_results() if self.shows_steps else {})}

    def tls(self) -> dict | None:
        """The result's "tls" section (None when no host is https)."""
        carried = [[{"tls_session": w.first_tls_session()}, w.latest()] for w in self.workers if w.latest()]
        return connection_costs.tls_section(carried,
                                            connection_costs.tls_options(self.workload))

    def to_result(self) -> dict:
        """The result file (the contract every report reads)."""
        tls = self.tls()
        points, step_series, samples = self.series_output()
        return {
            "surge_version": __version__,
            "result_format": RESULT_FORMAT,
            "started_at": self.started_at,
            "run": self.run_section(),
            "config": describe_config(self.workload, self.addresses),
            "machine": machine_info(),
            "interrupted": self.interrupted,
            **({"aborted_by": self.aborted_by} if self.aborted_by else {}),
            "totals": self.totals(),
            "latency": latency_summary(self.total_histogram()),
            **({"latency_uncorrected": latency_summary(self.total_histogram("latency_uncorrected"))}
               if self.open_model else {}),
            # what new connections cost: TCP connect, and with an https host the TLS handshake
            "connect": latency_summary(self.total_histogram(connection_costs.CONNECT_KEY)),
            **({"tls_handshake": latency_summary(self.total_histogram(connection_costs.HANDSHAKE_KEY)),
                "tls": tls} if tls is not None else {}),
            "timeseries": points,
            "workers_failed": self.workers_failed(),
            "resources": self.resources(),
            **(self.flow_results() if self.shows_steps else {}),
            **({"step_timeseries": step_timeseries(self, step_series)} if self.shows_steps else {}),
            **({"samples": samples} if samples else {}),
        }


def flow_rows(steps: list[dict], iterations: list[list[int]], written: list[Histogram],
              intended: list[Histogram] | None, scenarios: list[tuple[str, float, float]]) -> dict:
    """The result's `steps` and `scenarios` from each step's counters (step_counters),
    its histograms from the write and (open model) from the intended instant, and
    each scenario's (name, weight, share) with its [started, completed, aborted]."""
    latencies = intended if intended is not None else written
    for i, out in enumerate(steps):
        out["latency"] = latency_summary(latencies[i])
        if intended is not None:
            out["latency_uncorrected"] = latency_summary(written[i])
    rows = []
    for i, (name, weight, share) in enumerate(scenarios):
        merged, merged_written = Histogram(), Histogram()
        members = [k for k, step in enumerate(steps) if step["scenario"] == name]
        failed = no_failed()
        for k in members:
            merged.add(latencies[k])
            merged_written.add(written[k])
            failed = add_failed(failed, steps[k]["failed"])
        started, completed, aborted = iterations[i]
        rows.append({"name": name, "weight": weight, "share": round(share, 6),
                     "iterations": started, "completed": completed, "aborted": aborted,
                     "requests": sum(steps[k]["requests"] for k in members),
                     "errors": sum(sum(steps[k]["errors"].values()) for k in members),
                     "failed": failed,
                     "checks": sum(steps[k]["checks"] for k in members),
                     "check_failures": sum(steps[k]["check_failures"] for k in members),
                     "latency": latency_summary(merged),
                     **({"latency_uncorrected": latency_summary(merged_written)} if intended is not None else {})})
    return {"steps": steps, "scenarios": rows}


def live_step_histograms(record: RunRecord, k: int) -> tuple[list[Histogram], list[Histogram] | None]:
    """Second k's per-step histograms (from the write; open model: and from the
    intended instant) over the workers that reported it (the journal's)."""
    return _add_step_histograms(record, (w.ticks.get(k) or {} for w in record.workers))


def _add_step_histograms(record: RunRecord, snapshots, into=None) -> tuple[list[Histogram], list[Histogram] | None]:
    """The per-step histograms of these snapshots added (from the write; open
    model: and from each step's intended instant, else None), into `into` when given."""
    if into is None:
        n_steps = len(record.workload.step_names)
        written = [Histogram() for _ in range(n_steps)]
        intended = [Histogram() for _ in range(n_steps)] if record.open_model else None
    else:
        written, intended = into
    for snap in snapshots:
        flows = snap.get("flows")
        if not flows:
            continue
        for i, step in enumerate(flows["steps"]):
            written[i].add_sparse(*step[5])
        if intended is not None:
            for i, sparse in enumerate(flows.get("steps_corrected") or ()):
                intended[i].add_sparse(*sparse)
    return written, intended


def live_point(record: RunRecord, k: int) -> dict:
    """Second k from whatever workers have reported so far (live progress, Prometheus)."""
    snaps = [(w.ticks[k], w.before(k)) for w in record.workers if k in w.ticks]
    return record._point(k, float(k), snaps)


def step_timeseries(record: RunRecord, points: list[list[dict]] | None = None) -> list[dict]:
    """Per plan step (in `steps` order), one point per second with the same `t`
    as `timeseries`: responses, transport errors, failed requests (the step's
    own rule), p50 and p99 and that second's latency histogram, so each step
    has per-second samples of its own (surge compare tests a step's change on
    them).  In the open model, as in `timeseries`, `hdr`/`p50`/`p99` are
    corrected (from each step's intended instant) and `hdr_uncorrected`/
    `p50_uncorrected`/`p99_uncorrected` are from the step's own write.
    `points`: each step's (RunRecord.series_output), else read now."""
    if record.start_ns is None:
        return []
    if points is None:
        points = record.series_output()[1]
    return [{"scenario": scn, "step": name, "points": points[i]}
            for i, (scn, name) in enumerate(record.workload.step_names)]


def step_points(record: RunRecord, t_end: float, snaps: list[tuple[dict, dict | None]]) -> list[dict] | None:
    """One second's point of each plan step from the workers' snapshots ending in it
    (and the one before each, for deltas): counters are cumulative per worker,
    step latencies are per interval.  None when no snapshot has flows."""
    pairs = [(snap["flows"], (previous or {}).get("flows")) for snap, previous in snaps if snap.get("flows")]
    if not pairs:
        return None
    allowed = record.step_allowed
    out = []
    for i in range(len(record.workload.step_names)):
        written = Histogram()
        intended = Histogram() if record.open_model else None
        responses = errors = failed = 0
        for flows, previous in pairs:
            now, before = flows["steps"][i], (previous["steps"][i] if previous else None)
            written.add_sparse(*now[5])
            if intended is not None and flows.get("steps_corrected"):
                intended.add_sparse(*flows["steps_corrected"][i])
            responses += now[0] - (before[0] if before else 0)
            new_errors = sum(now[3]) - (sum(before[3]) if before else 0)
            errors += new_errors
            failed += new_errors + sum(n - (before[4].get(status, 0) if before else 0)
                                       for status, n in now[4].items() if is_failed_status(status, allowed[i]))
        point = {"t": t_end, "requests": responses, "errors": errors, "failed": failed,
                 **_step_latency_fields(intended if intended is not None else written)}
        if intended is not None:
            point.update(_step_latency_fields(written, "_uncorrected"))
        out.append(point)
    return out


def _step_latency_fields(hist: Histogram, suffix: str = "") -> dict:
    """A step point's p50, p99 and histogram (µs); 0 in a second without
    responses, as in `timeseries` (charts show a gap where requests is 0)."""
    p50, p99 = hist.values_at_percentiles((50, 99))
    return {f"p50{suffix}": p50, f"p99{suffix}": p99, f"hdr{suffix}": hist.encode()}
