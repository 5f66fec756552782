"""`surge serve`: the embedded HTTP/1.1 target for demos, tests and benchmarks."""
from __future__ import annotations

import sys
import time
from typing import NoReturn

import click
from click.core import ParameterSource

from surge.plan.units import UnitError, parse_duration_ns, parse_size_bytes
from surge.serve import server


PROG = "surge serve"


class OneLineUsageError(click.UsageError):
    """A usage error shown as one line (no usage block), exit code 2.

    surge's main() prints usage errors in this same shape itself; show() is
    for when the command runs under click's standalone mode.
    """

    def show(self, file=None) -> None:
        click.echo(f"{PROG}: error: {self.format_message()}", file=file or sys.stderr)


class _OneLineErrorsCommand(click.Command):
    def parse_args(self, ctx, args):
        # parse_args runs every option's conversion and callback, so each
        # usage error about an option passes through here
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as error:
            raise OneLineUsageError(error.format_message(), ctx) from None


def _checked(rule):
    """A click callback that applies one of server's option rules."""
    def callback(ctx, param, value):
        problem = rule(value)
        if problem:
            raise click.BadParameter(problem, ctx, param)
        return value
    return callback


def _size_bytes(ctx, param, value: str) -> int:
    try:
        size = parse_size_bytes(value)
    except UnitError as error:
        raise click.BadParameter(str(error), ctx, param) from None
    problem = server.problem_with_body_size(size)
    if problem:
        raise click.BadParameter(problem, ctx, param)
    return size


def _delay(ctx, param, value: str | None) -> server.Delay | None:
    try:
        return server.parse_delay(value)
    except ValueError as error:
        raise click.BadParameter(str(error), ctx, param) from None


def _duration_ns(ctx, param, value: str | None) -> int:
    if value is None:
        return 0
    try:
        return parse_duration_ns(value)
    except UnitError as error:
        raise click.BadParameter(str(error), ctx, param) from None


@click.command("serve", cls=_OneLineErrorsCommand)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", "-p", type=int, default=8080, show_default=True,
              callback=_checked(server.problem_with_port), help="Port; 0 picks a free one (printed).")
@click.option("--workers", "-w", type=int, default=1, show_default=True,
              callback=_checked(server.problem_with_workers),
              help="Worker processes, all accepting on the port (SO_REUSEPORT).")
@click.option("--body-size", default="0", show_default=True, callback=_size_bytes, metavar="SIZE",
              help="Response body size: 0, 512, 4k, 1MiB (a run of 'x').")
@click.option("--status", type=int, default=200, show_default=True,
              callback=_checked(server.problem_with_status), metavar="CODE",
              help="Response status code, 200 to 599.")
@click.option("--delay", default=None, callback=_delay, metavar="DELAY",
              help="Delay before each response, drawn per request: 10ms (fixed), uniform:5ms:15ms, "
                   "exp:10ms (exponential, that mean), normal:10ms:2ms (mean:stddev, >= 0). "
                   "Counted from the read of the request; microsecond resolution.")
@click.option("--seed", type=click.IntRange(0, server.MAX_SEED), default=None, metavar="N",
              help="Seed for the delay draws (repeatable per worker); default random.")
@click.option("--stall", default=None, callback=_duration_ns, metavar="DURATION",
              help="Hold every response for this long once per --stall-every, e.g. 1s.")
@click.option("--stall-every", default=None, callback=_duration_ns, metavar="DURATION",
              help="Period of the stalls, from the server's start; the first begins one period in.")
@click.option("--idle-timeout", default="60s", show_default=True, metavar="DURATION",
              callback=lambda ctx, param, value: 0 if value == "0" else _duration_ns(ctx, param, value),
              help="Close a connection that completes no request and drains no answer for this long "
                   "(slow or stalled clients, slowloris); 0 never. Answers held by --delay, stalls or "
                   "--service-time do not count as idle.")
@click.option("--max-connections", type=click.IntRange(0, None), default=server.DEFAULT_MAX_CONNECTIONS,
              show_default=True, metavar="N",
              help="Open connections per worker; more are closed as they are accepted (0: no bound "
                   "but the file descriptor limit).")
@click.option("--service-time", default=None, callback=_duration_ns, metavar="DURATION",
              help="A target with a known capacity: each request holds a service slot this long "
                   "(a timer, not CPU), e.g. 2ms; the rest wait in FIFO order. Capacity: "
                   "--concurrency / --service-time per worker, printed at start and in the status JSON.")
@click.option("--concurrency", type=int, default=None, metavar="N",
              help="With --service-time: requests in service at once per worker (default 1).")
@click.option("--app", type=click.Choice(server.APPS), default="default", show_default=True,
              help="default: every request gets the same answer (--status, --body-size). "
                   "demo: a small shop for test plans (POST /login, GET /dashboard, POST /logout, "
                   "GET /search?q=, GET /items/N, GET /admin/report) with per-route counts "
                   "in the status JSON.")
@click.option("--tls", is_flag=True,
              help="Serve HTTPS (TLS 1.2 and 1.3). Without --cert/--key: a throwaway self-signed ECDSA P-256 "
                   "certificate for 127.0.0.1, ::1 and localhost, whose path is printed (pass it to "
                   "`surge run --cacert`); it is removed when the server stops.")
@click.option("--cert", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="With --tls: the server's certificate (PEM, the chain after it).")
@click.option("--key", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="With --tls: the certificate's private key (PEM, unencrypted).")
@click.option("--close", is_flag=True, help="Send `Connection: close` and close after each response.")
@click.option("--status-path", default=server.DEFAULT_STATUS_PATH, show_default=True,
              callback=_checked(server.problem_with_status_path),
              help="Path answering JSON {requests, workers, started_at_monotonic_ns, stall_ns, "
                   "stall_every_ns, app, service_time_ns, concurrency, capacity_per_s, now_monotonic_ns, routes (demo app)}; not counted, not delayed or stalled.")
def serve_command(host: str, port: int, workers: int, body_size: int, status: int,
                  delay: server.Delay | None, seed: int | None, stall: int, stall_every: int,
                  idle_timeout: int, max_connections: int, service_time: int, concurrency: int | None,
                  app: str, tls: bool, cert: str | None, key: str | None, close: bool, status_path: str) -> None:
    """Serve HTTP/1.1 (keep-alive, pipelining) until Ctrl-C or SIGTERM.

    Every request gets the same response (with --app demo: the demo shop's
    routes). On start one line says where it
    listens (and the delay and stall schedule); on exit one line says how
    many requests were served.
    """
    ctx = click.get_current_context()
    problem = server.problem_with_body_size(body_size, status)
    if problem:
        raise OneLineUsageError(f"Invalid value for '--body-size': {problem}", ctx)
    problem = server.problem_with_stall(stall, stall_every)
    if problem:
        raise OneLineUsageError(problem, ctx)
    if app == "demo":
        for name in ("status", "body_size"):
            if ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, None):
                flag = "--" + name.replace("_", "-")
                raise OneLineUsageError(f"{flag} applies to --app default only; the demo app's "
                                        f"routes choose their own status and body", ctx)
    service_slots = concurrency if concurrency is not None else (1 if service_time else 0)
    problem = server.problem_with_service(service_time, service_slots, delay, stall)
    if problem:
        raise OneLineUsageError(problem, ctx)
    certificate = _certificate(ctx, tls, cert, key)
    started_at_ns = time.monotonic_ns()

    def announce(bound_host: str, bound_port: int) -> None:
        noun = "worker" if workers == 1 else "workers"
        details = [f"{workers} {noun}"]
        if app != "default":
            details.append(f"app {app}")
        if delay is not None:
            details.append(f"delay {delay.describe()}")
        if service_time:
            per_worker = server.capacity_per_s(service_time, service_slots)
            details.append(f"service time {server.format_ns(service_time)}, concurrency {service_slots}: "
                           f"capacity {per_worker:,.0f}/s per worker, {per_worker * workers:,.0f}/s in all")
        if stall:
            # the status path says the same as JSON; windows are
            # [start + k*every, start + k*every + stall) for k >= 1
            details.append(f"stall {server.format_ns(stall)} every {server.format_ns(stall_every)} "
                           f"from started_at_monotonic_ns={started_at_ns}")
        if certificate is not None:
            details.append("TLS" if certificate.throwaway_dir is None else
                           f"TLS, throwaway self-signed certificate {certificate.cert_path} "
                           f"(trust it with: surge run --cacert {certificate.cert_path})")
        url = server.listen_url(bound_host, bound_port, tls=certificate is not None)
        click.echo(f"surge serve listening on {url} ({'; '.join(details)})")
        sys.stdout.flush()

    try:
        served = server.serve(host, port, workers, body_size, status, delay, close, status_path,
                              ready_callback=announce, stall_ns=stall, stall_every_ns=stall_every,
                              seed=seed, started_at_ns=started_at_ns, app=app, tls=certificate,
                              service_ns=service_time, service_slots=service_slots,
                              idle_timeout_ns=idle_timeout, max_connections=max_connections)
    except ImportError as error:
        _fail(ctx, f"the compiled protocol is missing ({error}); run `make build`")
    except server.ServeError as error:
        _fail(ctx, str(error))
    finally:
        if certificate is not None:
            certificate.remove()            # a throwaway certificate's directory, key included
    click.echo(f"served {served} requests")


def _certificate(ctx: click.Context, tls: bool, cert: str | None, key: str | None):
    """The certificate --tls serves (None without --tls); usage errors exit 2."""
    from surge.serve.certs import CertificateError, ServerCertificate, server_context, throwaway_certificate

    if not tls:
        if cert is not None or key is not None:
            raise OneLineUsageError(f"{'--cert' if cert is not None else '--key'} needs --tls", ctx)
        return None
    if (cert is None) != (key is None):
        raise OneLineUsageError("--cert and --key go together (the certificate and its private key); "
                                "give both, or neither for a throwaway self-signed certificate", ctx)
    if cert is not None:
        given = ServerCertificate(cert, key)
        try:
            server_context(given)           # a missing file or a key that is not the certificate's: exit 2
        except CertificateError as error:
            raise OneLineUsageError(str(error), ctx) from None
        return given
    try:
        return throwaway_certificate()
    except CertificateError as error:
        _fail(ctx, str(error))


def _fail(ctx: click.Context, message: str) -> NoReturn:
    """One line on stderr, exit 1: ctx.exit works with and without standalone mode."""
    click.echo(f"{PROG}: error: {message}", err=True)
    ctx.exit(1)
