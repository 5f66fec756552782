"""The `surge` command: parse arguments, call plan/run/report, map failures to
exit codes (0 ok, 1 runtime error, 2 usage or plan error, 3 thresholds or
regression gate failed, 130 interrupted).  No traceback reaches a user."""
from __future__ import annotations

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

    def get_command(self, ctx, name):
        target = self.COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="surge")
def cli():
    """surge: HTTP load generator with a compiled core."""


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    args = sys.argv[1:] if argv is None else argv
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
    sys.exit(code)


if __name__ == "__main__":
    main()
