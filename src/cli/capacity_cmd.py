"""`surge capacity TARGET --slo EXPR`: the highest rate the target sustains within
its SLOs (open model), or its scalability curve and USL fit (--model closed).

Parses and checks the options (every bad value: one line, exit 2), builds the
base workload through the plan layer, and runs the steps through surge's run
machinery (surge.capacity.runner -> surge.run.session.run_observed)."""
from __future__ import annotations

import math
import sys
import time

import click

from surge.cli.main import EXIT_GATE, EXIT_INTERRUPTED, EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, SurgeExit
from surge.plan.units import UnitError, parse_duration_ns

PROG = "surge capacity"
MAX_CONCURRENCY = 100_000


def _usage(message: str) -> SurgeExit:
    return SurgeExit(EXIT_USAGE, f"{PROG}: error: {message}")


def parse_rate(text: str, flag: str) -> float:
    """'100', '2k', '1.5k/s' -> requests per second (> 0)."""
    raw = text.strip().lower().removesuffix("/s")
    scale = 1.0
    if raw.endswith("k"):
        raw, scale = raw[:-1], 1e3
    elif raw.endswith("m"):
        raw, scale = raw[:-1], 1e6
    try:
        rate = float(raw) * scale
    except ValueError:
        raise _usage(f"{flag}: got {text!r}, expected requests per second like 100, 2k or 0.5") from None
    if not (rate > 0 and math.isfinite(rate)):
        raise _usage(f"{flag}: got {text!r}, must be > 0")
    return rate


def parse_fraction(text: str, flag: str, low: float, high: float, allowed: str) -> float:
    """'2%' or '0.02' -> 0.02, strictly between low and high."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise _usage(f"{flag}: got {text!r}, expected a percentage like 2% or a fraction like 0.02") from None
    if not low < value < high:
        raise _usage(f"{flag}: got {text!r}, allowed: {allowed}")
    return value


def parse_seconds(text: str, flag: str, minimum_s: int) -> int:
    """A duration in whole seconds (steps are judged on per-second ticks); rounded up."""
    if text.strip() == "0":
        seconds = 0
    else:
        try:
            seconds = math.ceil(parse_duration_ns(text) / 1e9)
        except UnitError as exc:
            raise _usage(f"{flag}: {exc}") from None
    if seconds < minimum_s:
        raise _usage(f"{flag}: got {text!r}, must be at least {minimum_s}s")
    return seconds


def parse_concurrency(text: str) -> list[int]:
    """'1,2,4,8' (strictly increasing) or '1..256' (doubling from the first to the last)."""
    raw = text.strip()
    try:
        if ".." in raw:
            first_text, _, last_text = raw.partition("..")
            first, last = int(first_text), int(last_text)
            if first < 1 or last < first:
                raise _usage(f"--concurrency: got {text!r}, a range FIRST..LAST needs 1 <= FIRST <= LAST")
            values, n = [], first
            while n < last:
                values.append(n)
                n *= 2
            values.append(last)
        else:
            values = [int(part) for part in raw.split(",") if part.strip()]
    except ValueError:
        raise _usage(f"--concurrency: got {text!r}, expected a list like 1,2,4,8 or a range like 1..256") from None
    if len(values) < 1 or any(v < 1 or v > MAX_CONCURRENCY for v in values):
        raise _usage(f"--concurrency: got {text!r}, each value must be from 1 to {MAX_CONCURRENCY:,}")
    if any(b <= a for a, b in zip(values, values[1:])):
        raise _usage(f"--concurrency: got {text!r}, the values must be increasing")
    return values


def parse_slos(texts) -> list:
    from surge.plan.objective import ObjectiveError, parse_objective
    slos = []
    for text in texts:
        try:
            slos.append(parse_objective(text))
        except ObjectiveError as exc:
            raise _usage(f"--slo {text!r}: {exc}") from None
    return slos


@click.command("capacity", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("target", metavar="URL|PLAN")
@click.option("--slo", "slo_texts", multiple=True, metavar="EXPR",
              help="An SLO, repeatable: 'p99 < 50ms', 'p99.9 < 200ms', 'error_rate < 0.1%', "
                   "'p95{step=login} < 300ms'. Default: a plan's objectives.")
@click.option("--model", type=click.Choice(["open", "closed"]), default="open", show_default=True,
              help="open: search the highest sustainable rate; closed: sweep --concurrency and fit the USL.")
@click.option("--from", "from_text", default="100", show_default=True, metavar="RATE",
              help="Open model: the first step's rate (req/s).")
@click.option("--growth", default=2.0, show_default=True, type=float, help="Rate multiplier while steps pass (> 1).")
@click.option("--precision", "precision_text", default="2%", show_default=True,
              help="Bisect until the fail and pass rates are this close (relative, 0 < p < 50%).")
@click.option("--to", "to_text", default=None, metavar="RATE", help="The highest rate tried.")
@click.option("--warmup", "warmup_text", default="5s", show_default=True,
              help="Each step's warm-up, excluded from its verdict.")
@click.option("--step", "step_text", default="20s", show_default=True, help="Each step's measured length.")
@click.option("--max-time", "max_time_text", default="10m", show_default=True, help="Bound on the whole search.")
@click.option("--confidence", "confidence_text", default="95%", show_default=True,
              help="Confidence of the verdicts' intervals (50% < c < 100%).")
@click.option("--concurrency", "concurrency_text", default="1..256", show_default=True,
              help="Closed model: the concurrencies, '1,2,4,8' or '1..256' (doubling).")
@click.option("--expect-at-least", "expect_text", default=None, metavar="RATE",
              help="Exit 3 when the capacity found is below this rate (a CI gate).")
@click.option("-w", "--workers", type=click.IntRange(1, 1024), default=None,
              help="Client worker processes (default: CPU count).")
@click.option("-m", "--method", default="GET", show_default=True)
@click.option("-H", "--header", "headers", multiple=True, help="'Name: value', repeatable.")
@click.option("--body", help="Request body: TEXT, or @FILE.")
@click.option("--auth", metavar="USER:PASSWORD", help="HTTP Basic auth.")
@click.option("--timeout", "timeout_text", default="5s", show_default=True, help="Request timeout.")
@click.option("--max-connections", type=click.IntRange(1, 1_000_000), default=None,
              help="Open model: most connections (default: enough for twice the slowest latency SLO).")
@click.option("-k", "--insecure", is_flag=True, help="HTTPS: do not verify the certificate.")
@click.option("--cacert", metavar="FILE", help="HTTPS: also trust these CA certificates (PEM).")
@click.option("--json", "json_path", metavar="FILE", help="Write the capacity result (every step's full result).")
@click.option("--html", "html_path", metavar="FILE", help="Write the capacity page.")
@click.option("-q", "--quiet", is_flag=True, help="No per-step lines while the search runs.")
def capacity_command(target, slo_texts, model, from_text, growth, precision_text, to_text, warmup_text, step_text,
                     max_time_text, confidence_text, concurrency_text, expect_text, workers, method, headers, body,
                     auth, timeout_text, max_connections, insecure, cacert, json_path, html_path, quiet):
    """Find the highest load TARGET sustains within its SLOs, with the confidence
    stated (open model), or how its throughput scales with concurrency (closed
    model, Universal Scalability Law). Never blames the target for surge's own
    limit: a step where surge could not deliver the load ends the search with a
    lower bound."""
    ctx = click.get_current_context()
    explicit = {p.name for p in ctx.command.params
                if ctx.get_parameter_source(p.name) == click.core.ParameterSource.COMMANDLINE}
    slos = parse_slos(slo_texts)
    start = parse_rate(from_text, "--from")
    to = parse_rate(to_text, "--to") if to_text is not None else None
    if to is not None and start >= to:
        raise _usage(f"--from {from_text} must be below --to {to_text}")
    if not growth > 1 or not math.isfinite(growth):
        raise _usage(f"--growth: got {growth:g}, must be > 1")
    precision = parse_fraction(precision_text, "--precision", 0.0, 0.5, "0 < precision < 50%")
    confidence = parse_fraction(confidence_text, "--confidence", 0.5, 1.0, "50% < confidence < 100%")
    warmup_s = parse_seconds(warmup_text, "--warmup", 0)
    step_s = parse_seconds(step_text, "--step", 1)
    max_time_s = parse_seconds(max_time_text, "--max-time", 1)
    expect = parse_rate(expect_text, "--expect-at-least") if expect_text is not None else None
    concurrencies = parse_concurrency(concurrency_text) if model == "closed" else []
    try:
        timeout_ns = parse_duration_ns(timeout_text)
    except UnitError as exc:
        raise _usage(f"--timeout: {exc}") from None
    files = _checked_outputs(json_path, html_path)

    base = _base_workload(target, model, start, concurrencies, workers, method, headers, body, auth, timeout_ns,
                          max_connections, insecure, cacert, explicit)
    if not slos:
        slos = list(base.objectives)
    if model == "open" and not slos:
        raise _usage("give at least one --slo (e.g. --slo 'p99 < 50ms'), or a plan with objectives")
    if model == "open":
        from surge.plan.workload import PlanSource
        if isinstance(base.source, PlanSource) and base.load.model != "open":
            raise _usage(f"{target}: the plan has no open model (load: rate), so there is no rate to search; "
                         f"use --model closed, or give the plan load: rate")
    say = (lambda text: None) if quiet else (lambda text: click.echo(text, err=True))
    try:
        if model == "open":
            return _open(base, slos, confidence, start, growth, precision, to, warmup_s, step_s, max_time_s,
                         expect, max_connections, files, say)
        return _closed(base, slos, confidence, concurrencies, warmup_s, step_s, max_time_s, files, say)
    except KeyboardInterrupt:
        raise SurgeExit(EXIT_INTERRUPTED, f"{PROG}: interrupted") from None


def _checked_outputs(json_path, html_path) -> dict:
    from surge.report.outputs import OutputPathError, check_paths, requested
    files = requested(json_path, html_path, None, None)
    try:
        check_paths(files)
    except OutputPathError as exc:
        raise _usage(str(exc)) from None
    return {"json": json_path, "html": html_path}


def _base_workload(target, model, start, concurrencies, workers, method, headers, body, auth, timeout_ns,
                   max_connections, insecure, cacert, explicit):
    from surge.plan.build import build_workload, looks_like_plan
    from surge.plan.options import RunOptions

    plan = looks_like_plan(target)
    fields = dict(workers=workers, timeout_ns=timeout_ns, insecure=insecure, cacert=cacert)
    spelled = {"workers": "-w/--workers", "timeout": "--timeout", "insecure": "-k/--insecure", "cacert": "--cacert"}
    if not plan:
        fields.update(method=method, headers=tuple(headers), body=body, auth=auth, duration_ns=10**9)
        if model == "open":
            fields.update(rate=start, max_connections=max_connections)
        else:
            fields.update(connections=concurrencies[0])
    else:
        refused = [flag for name, flag in (("method", "-m"), ("headers", "-H"), ("body", "--body"),
                                            ("auth", "--auth"), ("max_connections", "--max-connections"))
                   if name in explicit]
        if refused:
            raise _usage(f"{', '.join(refused)}: a plan says these per step (or load: max_vus)")
    given = {spelled[k]: spelled[k] for k in spelled if k in explicit}
    built = build_workload(target, RunOptions(**fields, explicit=given))
    if built.problems:
        raise SurgeExit(EXIT_USAGE, "\n".join(p.text if p.in_plan_file else f"{PROG}: error: {p.text}"
                                              for p in built.problems))
    return built.workload


def _run_error(exc) -> SurgeExit:
    return SurgeExit(EXIT_RUNTIME, f"{PROG}: error: {exc}")


def _step_line(index: int, step, model: str) -> str:
    from surge.capacity.report import _rate, _slo_note
    what = f"{_rate(step.rate)}/s" if model == "open" else f"{int(step.rate)} users"
    guard = f"; generator guard: {step.guard['problem']}" if step.generator_limited else ""
    note = _slo_note(step) if model == "open" else ""
    return (f"step {index}: {what} -> {step.verdict} (achieved {_rate(step.achieved_rate)}/s; {step.reason}"
            f"{'; ' + note if note else ''}{guard})")


def _open(base, slos, confidence, start, growth, precision, to, warmup_s, step_s, max_time_s, expect,
          max_connections, files, say) -> int:
    from surge.capacity import report, runner
    from surge.capacity.search import SearchSettings, search
    from surge.run.supervisor import RunError

    extensions = 2
    settings = SearchSettings(start=start, growth=growth, precision=precision, to=to, max_time_s=max_time_s,
                              step_cost_s=warmup_s + step_s + 2)
    deadline = time.monotonic() + max_time_s
    count = [0]

    def run_one(rate: float):
        count[0] += 1
        workload = runner.open_step_workload(base, rate, warmup_s + step_s * (1 + extensions), max_connections,
                                             slos)
        progress = runner.progress_printer(sys.stderr, f"step {count[0]} at {rate:,.0f}/s",
                                           warmup_s + step_s, deadline)
        step = runner.run_step(workload, slos, confidence, rate, warmup_s, step_s, extensions, progress=progress)
        if progress:
            sys.stderr.write("\r")
        say(_step_line(count[0], step, "open"))
        return step

    say(f"{PROG}: searching from {start:,.0f}/s (x{growth:g}, precision {precision * 100:g}%, "
        f"steps {warmup_s}s warm-up + {step_s}s, at most {max_time_s}s) for {' and '.join(o.text for o in slos)}")
    try:
        outcome = search(run_one, settings)
    except RunError as exc:
        raise _run_error(exc) from None
    answer = report.answer_line(outcome, slos, confidence, settings)
    click.echo(report.step_table(outcome.steps))
    click.echo(answer)
    document = report.capacity_document(outcome, slos, confidence, _settings(settings, warmup_s, step_s),
                                        answer, "open")
    code = _write(document, files)
    if outcome.failed_at_start:
        return max(code, EXIT_GATE) if code != EXIT_RUNTIME else code
    if expect is not None and (outcome.max_rate or 0.0) < expect:
        click.echo(f"{PROG}: capacity {outcome.max_rate or 0:,.0f} req/s is below --expect-at-least "
                   f"{expect:,.0f}", err=True)
        return EXIT_RUNTIME if outcome.limited_by == "generator" else EXIT_GATE
    return code


def _settings(settings, warmup_s, step_s) -> dict:
    return {"from": settings.start, "growth": settings.growth, "precision": settings.precision, "to": settings.to,
            "warmup_s": warmup_s, "step_s": step_s, "max_time_s": settings.max_time_s}


def _closed(base, slos, confidence, concurrencies, warmup_s, step_s, max_time_s, files, say) -> int:
    from surge.capacity import report, runner
    from surge.capacity.search import sweep
    from surge.capacity.usl import fit_usl, limit_sentence
    from surge.run.supervisor import RunError

    count = [0]

    def run_one(users: int):
        count[0] += 1
        workload = runner.closed_step_workload(base, users, warmup_s + step_s)
        step = runner.run_step(workload, slos, confidence, users, warmup_s, step_s, 0, judge=False)
        say(_step_line(count[0], step, "closed"))
        return step

    say(f"{PROG}: closed-model sweep over {', '.join(map(str, concurrencies))} users "
        f"({warmup_s}s warm-up + {step_s}s each)")
    try:
        steps, cut = sweep(run_one, concurrencies, max_time_s, warmup_s + step_s + 2)
    except RunError as exc:
        raise _run_error(exc) from None
    points = [{"concurrency": int(s.rate), "throughput": s.achieved_rate, "p50_us": s.percentiles_us["p50"],
               "p99_us": s.percentiles_us["p99"]} for s in steps]
    click.echo(report.step_table(steps, model="closed"))
    usl = None
    if len(points) >= 3:
        fit = fit_usl([p["concurrency"] for p in points], [p["throughput"] for p in points])
        sentence = limit_sentence(fit)
        usl = fit.as_dict(points)
        click.echo(report.usl_lines(fit, sentence))
        answer = (f"peak throughput {fit.x_max:,.0f} req/s"
                  + (f" at N*={fit.n_star:.1f}" if fit.n_star is not None else " (no peak: kappa = 0)")
                  + f"; {sentence}")
    else:
        answer = "too few concurrencies measured for a USL fit (at least 3)"
    if cut:
        answer += " (the sweep was cut short by --max-time)"
    click.echo(answer)
    settings = {"concurrency": concurrencies, "warmup_s": warmup_s, "step_s": step_s, "max_time_s": max_time_s}
    return _write(report.closed_document(steps, slos, confidence, settings, answer, usl), files)


def _write(document: dict, files: dict) -> int:
    import json

    from surge.capacity.report import html_page
    code = EXIT_OK
    for kind, path in files.items():
        if not path:
            continue
        try:
            text = json.dumps(document, indent=1) if kind == "json" else html_page(document)
            if path == "-":
                sys.stdout.write(text + "\n")
            else:
                from surge.report.outputs import write_text_atomically
                write_text_atomically(path, text)
        except OSError as exc:
            click.echo(f"{PROG}: error: cannot write {path}: {exc.strerror}", err=True)
            code = EXIT_RUNTIME
    return code
