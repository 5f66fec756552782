"""Where a run's (or `surge report`'s) files go.

Before any load is sent, every output path is checked (its directory exists
and is writable, the path is not a directory, no two options share a file),
so a typo costs nothing instead of a whole run.  At the end every report that
can be written is written, the result file first (every other report can be
remade from it), and the ones that could not are named afterwards: one failed
writer never loses the others.
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from typing import Callable

STDOUT = "-"                    # `--json -`: the result file on standard output

# The order reports are written in: the result file first.
OPTIONS = ("--json", "--html", "--csv", "--hlog")


@dataclass(frozen=True)
class Output:
    """One file an option asks for."""
    option: str                 # "--html"
    path: str

    @property
    def to_stdout(self) -> bool:
        return self.option == "--json" and self.path == STDOUT


@dataclass(frozen=True)
class WriteFailure:
    """A report that could not be written, and the exit code that says why
    (1: the file system refused, or a report failed; 2: the result cannot make it)."""
    option: str
    path: str
    reason: str
    code: int

    def line(self, command: str) -> str:
        return f"{command}: error: cannot write {self.option} {self.path}: {self.reason}"


class OutputPathError(ValueError):
    """An output path that cannot be written; the message is one line naming the option and the path."""


def requested(json_path=None, html_path=None, csv_path=None, hlog_path=None) -> list[Output]:
    """The outputs asked for, in writing order."""
    paths = dict(zip(OPTIONS, (json_path, html_path, csv_path, hlog_path)))
    return [Output(option, os.fspath(path)) for option, path in paths.items() if path]


def _problem(path: str) -> str | None:
    """Why `path` cannot be written (a new file or one to replace), or None."""
    if path == "":
        return "empty path"
    if os.path.isdir(path):
        return "is a directory, expected a file path"
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.exists(parent):
        return f"directory {os.path.dirname(path) or parent} does not exist"
    if not os.path.isdir(parent):
        return f"{os.path.dirname(path)} is not a directory"
    if os.path.exists(path):
        if not os.access(path, os.W_OK):
            return "not writable (permission denied)"
    elif not os.access(parent, os.W_OK | os.X_OK):
        return f"directory {os.path.dirname(path) or '.'} is not writable (permission denied)"
    return None


def _files(output: Output) -> list[tuple[str, str]]:
    """(label, path) of each file an output writes: --csv also writes <stem>.steps.csv
    when the run has steps or stages, which is not known before the run, so it is checked too."""
    if output.to_stdout:
        return []
    files = [(output.option, output.path)]
    if output.option == "--csv":
        from surge.report.csv_export import steps_path
        files.append((f"--csv {output.path}: its steps file", steps_path(output.path)))
    return files


def check_paths(outputs: list[Output], inputs: dict[str, str] | None = None) -> None:
    """OutputPathError for the first output that could not be written at the end,
    or that would overwrite another output or one of `inputs` ({label: path})."""
    seen = {os.path.realpath(path): label for label, path in (inputs or {}).items()}
    for output in outputs:
        if output.path == STDOUT and not output.to_stdout:
            raise OutputPathError(f"{output.option} -: only --json can be written to standard output")
        for label, path in _files(output):
            problem = _problem(path)
            if problem:
                raise OutputPathError(f"{label} {path}: {problem}")
            key = os.path.realpath(path)
            if key in seen:
                raise OutputPathError(f"{label} {path}: the same file as {seen[key]}; give each its own path")
            seen[key] = label


def write_json(result: dict, path: str) -> None:
    """The result file, to `path` or to standard output for '-'."""
    if path == STDOUT:
        json.dump(result, sys.stdout, indent=1)
        sys.stdout.write("\n")
        sys.stdout.flush()
        return
    def write(temporary: str) -> None:
        with open(temporary, "w") as f:
            json.dump(result, f, indent=1)
            f.write("\n")
    atomically(path, write)


def atomically(path: str | os.PathLike, write: Callable[[str], object]):
    """write(temporary path) beside `path`, then rename it over `path`: a reader
    (or a run killed mid-write) sees the old file or the whole new one, never a
    half-written one.  Returns what write returned; the temporary is removed on failure.

    Every file surge writes goes through here (the result, --html, --csv and its
    steps file, --hlog, --junit, --summary-json, capacity reports, convert -o)."""
    directory, name = os.path.split(os.path.abspath(os.fspath(path)))
    temporary = os.path.join(directory, f".{name}.{os.getpid()}.tmp")
    try:
        said = write(temporary)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.remove(temporary)
        except OSError:
            pass
        raise
    return said


def write_text_atomically(path: str | os.PathLike, text: str) -> None:
    """`text` (UTF-8) as the whole of `path`, through `atomically`."""
    def write(temporary: str) -> None:
        with open(temporary, "w", encoding="utf-8") as f:
            f.write(text)
    atomically(path, write)


def _writer(option: str, result: dict, path: str) -> Callable[[], str | None]:
    """A function writing one report; it returns what to say once written (or None)."""
    if option == "--json":
        return lambda: write_json(result, path)          # silent, as it always was
    if option == "--html":
        from surge.report.html import write_html
        return lambda: f"wrote {path} ({write_html(result, path) / 1_000_000:.1f} MB)"
    if option == "--csv":
        from surge.report.csv_export import write_csv
        return lambda: "\n".join(f"wrote {p}" for p in write_csv(result, path))
    if option == "--hlog":
        from surge.report.hlog import write_hlog
        return lambda: f"wrote {path} ({write_hlog(result, path)} intervals)"
    raise ValueError(f"unknown output option {option}")


def write_all(result: dict, outputs: list[Output], say: Callable[[str], None]) -> list[WriteFailure]:
    """Write every output, saying each one written; returns the ones that failed.

    Any failure of one report is caught, even a bug in it, so the others (and
    above all the result file of a long run) are still written."""
    from surge.report.hlog import HlogError

    failures = []
    for output in outputs:
        try:
            said = _writer(output.option, result, output.path)()
        except OSError as exc:
            failures.append(WriteFailure(output.option, output.path, exc.strerror or str(exc), 1))
        except HlogError as exc:
            failures.append(WriteFailure(output.option, output.path, str(exc), 2))
        except Exception as exc:  # noqa: BLE001 - a bug in one report must not lose the others
            failures.append(WriteFailure(output.option, output.path,
                                         f"internal error: {type(exc).__name__}: {exc} (please report it)", 1))
        else:
            if said:
                say(said)
    return failures
