"""The `surge` command: parse arguments, call plan/run/report, map failures to
exit codes (0 ok, 1 runtime error, 2 usage or plan error, 3 thresholds or
regression gate failed, 130 interrupted).  No traceback reaches a user."""
from __future__ import annotations

import gc
import importlib
import os
import sys

import click

from surge import __version__
# The codes and their precedence are the run's policy (surge.outcome); re-exported for the commands.
from surge.outcome import (EXIT_GATE, EXIT_INTERRUPTED, EXIT_OK, EXIT_PRECEDENCE,  # noqa: F401
                               EXIT_RUNTIME, EXIT_USAGE, worst_exit)

# click >= 8.2 raises this for a bare group invocation (help, then exit 0).
_NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", None) or getattr(
    click.exceptions, "NoArgsIsHelp", click.exceptions.Exit)

class SurgeExit(Exception):
    """Raised by commands to end with a one-line message and an exit code."""
    def __init__(self, code: int, message: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message


class LazyGroup(click.Group):
    """Subcommands imported only when invoked: `surge run` pays nothing for `surge serve`."""

    COMMANDS = {
        "run": "surge.cli.run_cmd:run_command",
        "serve": "surge.cli.serve_cmd:serve_command",
        "report": "surge.cli.report_cmd:report_command",
        "compare": "surge.cli.compare_cmd:compare_command",
        "validate": "surge.cli.validate_cmd:validate_command",
        "capacity": "surge.cli.capacity_cmd:capacity_command",
        "convert": "surge.cli.convert_cmd:convert_command",
        "merge": "surge.cli.merge_cmd:merge_command",
        "k8s": "surge.cli.k8s_cmd:k8s_command",
    }

    def list_commands(self, ctx):
        return sorted(self.COMMANDS)

    # Commands that call start_up_over() themselves, once their own set-up is
    # done (`surge run`: right before it forks the workers).
    END_THEIR_START_UP = {"run"}

    def get_command(self, ctx, name):
        target = self.COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        command = getattr(importlib.import_module(module), attr)
        if name not in self.END_THEIR_START_UP:
            start_up_over()
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="surge")
def cli():
    """surge: HTTP load generator with a compiled core."""


_start_up = {"collector_paused": False, "own_process": False}


def start_up_over() -> None:
    """The imports and set-up are done: collect from here on.  main() pauses the
    cyclic collector for the start-up: it allocates ~100k long-lived objects
    (modules, classes, functions), so the ~50 collections it would trigger find
    nothing and cost ~10% of the start-up's CPU.  In a process of its own,
    what start-up made is then frozen (gc.freeze), so that the run's later
    collections do not walk it again and a forked worker does not copy its
    pages.  `surge run` calls this before it forks, LazyGroup as soon as any
    other command is imported, main() at the end in any case.  Idempotent."""
    if _start_up["collector_paused"]:
        _start_up["collector_paused"] = False
        if _start_up["own_process"]:
            gc.freeze()
        gc.enable()


def main(argv: list[str] | None = None) -> None:
    """Console entry point (`surge`, `python -m surge`: argv None, this process
    ends here, see _exit), or a call with the arguments (tests: SystemExit)."""
    args = sys.argv[1:] if argv is None else argv
    if gc.isenabled():
        gc.disable()
        _start_up.update(collector_paused=True, own_process=argv is None)
    try:
        code = cli.main(args=args, prog_name="surge", standalone_mode=False)
        code = code if isinstance(code, int) else EXIT_OK
    except _NO_ARGS_IS_HELP as exc:  # bare `surge`: help on stdout
        ctx = getattr(exc, "ctx", None)
        click.echo(ctx.get_help() if ctx else "")
        code = EXIT_OK
    except click.UsageError as exc:
        where = f"surge {exc.ctx.info_name}" if exc.ctx and exc.ctx.info_name != "surge" else "surge"
        click.echo(f"{where}: error: {exc.format_message()}", err=True)
        code = EXIT_USAGE
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.Abort:
        click.echo("surge: interrupted", err=True)
        code = EXIT_INTERRUPTED
    except SurgeExit as exc:
        if exc.message:
            from surge.plan.redact import scrub      # the run's secret values never reach a message
            click.echo(scrub(exc.message), err=True)
        code = exc.code
    except KeyboardInterrupt:
        click.echo("surge: interrupted", err=True)
        code = EXIT_INTERRUPTED
    except BrokenPipeError:
        code = EXIT_RUNTIME
    except Exception as exc:  # noqa: BLE001 - the last guard: a bug must not print a traceback
        from surge.plan.redact import scrub
        click.echo(scrub(f"surge: internal error: {type(exc).__name__}: {exc} (please report it; "
                         f"SURGE_DEBUG=1 shows the traceback)"), err=True)
        if os.environ.get("SURGE_DEBUG") == "1":
            raise
        code = EXIT_RUNTIME
    finally:
        start_up_over()
    if argv is None:
        _exit(code)
    sys.exit(code)


def _exit(code) -> None:
    """End the process with `code` as sys.exit() would, without tearing the
    interpreter down: freeing ~250 modules and everything they hold costs
    ~20-40 ms of CPU, a third of a short run's fixed cost, and writes nothing.
    Every output file is closed by now (the writers use `with`; the journal is
    closed by Observers.close); what remains is what an ordinary exit does that
    matters: the atexit handlers (multiprocessing's children, weakref
    finalizers), stdout and stderr flushed.  Anything else alive (a thread that
    is not a daemon) takes the ordinary way, as does a flush that fails (a
    closed pipe: Python's own message and status 120)."""
    import atexit

    threading = sys.modules.get("threading")    # no threads without it (_thread alone: none here)
    if threading is not None and any(not t.daemon for t in threading.enumerate()
                                     if t is not threading.main_thread()):
        sys.exit(code)                          # the ordinary exit waits for it
    atexit._run_exitfuncs()                     # (run once: it empties the list)
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except Exception:  # noqa: BLE001 - the ordinary exit reports it as Python does
        sys.exit(code)
    if code is None:
        code = 0
    elif not isinstance(code, int):       # sys.exit("text"): printed, status 1
        sys.exit(code)
    os._exit(code & 0xFF)                   # as the status sys.exit(code) gives


if __name__ == "__main__":
    main()
