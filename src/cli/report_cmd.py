"""`surge report RESULT.json`: remake any report from a result file;
`surge report --recover JOURNAL --json OUT`: a result from a killed run's journal."""
from __future__ import annotations

import click

from surge.cli.main import EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, SurgeExit, worst_exit


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("result_path", metavar="RESULT.json", required=False)
@click.option("--recover", "journal_path", metavar="JOURNAL",
              help="Rebuild the result from a run's journal (FILE.journal beside surge run --json FILE), "
                   "e.g. after the run was killed; write it with --json.")
@click.option("--json", "json_path", metavar="FILE", help="With --recover: write the recovered result here.")
@click.option("--html", "html_path", metavar="FILE", help="Write the HTML report here.")
@click.option("--csv", "csv_path", metavar="FILE",
              help="Write the time series CSV here (and <stem>.steps.csv when the run has steps).")
@click.option("--hlog", "hlog_path", metavar="FILE", help="Write an HdrHistogram interval log here.")
@click.option("--step", "step_number", type=int, default=None, metavar="N",
              help="A capacity result (surge capacity --json): report its step N (from 1) as a run.")
def report_command(result_path, journal_path, json_path, html_path, csv_path, hlog_path, step_number):
    """Print the summary of RESULT.json, or write the reports asked for.
    RESULT.json may also be a capacity result: its table and answer, its
    --html page, or with --step N any one step's reports."""
    from surge.result.load import ResultFileError, check_result, read_json
    from surge.report.outputs import OutputPathError, check_paths, requested, write_all

    if (result_path is None) == (journal_path is None):
        raise SurgeExit(EXIT_USAGE, "surge report: error: give RESULT.json or --recover JOURNAL (one of them)")
    if json_path and not journal_path:
        raise SurgeExit(EXIT_USAGE, "surge report: error: --json: only with --recover (RESULT.json is the result)")
    files = requested(json_path=json_path, html_path=html_path, csv_path=csv_path, hlog_path=hlog_path)
    source = {"JOURNAL": journal_path} if journal_path else {"RESULT.json": result_path}
    try:
        check_paths(files, inputs=source)
        if journal_path:
            from surge.run.journal import JournalError, recover
            if step_number is not None:
                raise SurgeExit(EXIT_USAGE, "surge report: error: --step: only with a capacity result, "
                                            "not with --recover")
            try:
                result = recover(journal_path)
            except JournalError as exc:
                raise SurgeExit(EXIT_USAGE, f"surge report: error: --recover {exc}") from None
        else:
            data = read_json(result_path)
            capacity = _capacity_document(data, result_path, step_number)
            if capacity is not None and step_number is None:
                return _capacity_report(capacity, result_path, html_path, csv_path, hlog_path)
            if capacity is not None:
                result = check_result(capacity["capacity"]["steps"][step_number - 1]["result"],
                                      f"{result_path} step {step_number}")
            else:
                result = check_result(data, result_path)
    except (OutputPathError, ResultFileError) as exc:
        raise SurgeExit(EXIT_USAGE, f"surge report: error: {exc}") from None
    if not files:
        from surge.report.summary import render_summary
        click.echo(render_summary(result))
        return EXIT_OK
    # Every report that can be written is; then the ones that could not, one line each.
    codes = []
    for failure in write_all(result, files, say=lambda text: click.echo(text, err=True)):
        click.echo(failure.line("surge report"), err=True)
        codes.append(failure.code)
    return worst_exit(*codes)


def _capacity_document(data, path: str, step_number: int | None) -> dict | None:
    """The checked capacity result when the file is one (None: a run result); --step checked against it."""
    from surge.capacity.report import check_capacity, is_capacity_document

    if not is_capacity_document(data):
        if step_number is not None:
            raise SurgeExit(EXIT_USAGE, f"surge report: error: --step {step_number}: {path} is not a capacity "
                                        "result (surge capacity --json); --step picks one of its steps")
        return None
    document = check_capacity(data, path)
    count = len(document["capacity"]["steps"])
    if step_number is not None and not 1 <= step_number <= count:
        raise SurgeExit(EXIT_USAGE, f"surge report: error: --step {step_number}: {path} has steps 1 to {count}")
    return document


def _capacity_report(document: dict, path: str, html_path, csv_path, hlog_path) -> int:
    """A capacity result without --step: its table and answer, or its page (--html)."""
    from surge.capacity.report import html_page, saved_summary

    if csv_path or hlog_path:
        flag = "--csv" if csv_path else "--hlog"
        raise SurgeExit(EXIT_USAGE, f"surge report: error: {flag}: {path} is a capacity result; "
                                    f"give --step N for one step's {flag}")
    if not html_path:
        click.echo(saved_summary(document))
        return EXIT_OK
    try:
        page = html_page(document)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise SurgeExit(EXIT_USAGE, f"surge report: error: {path}: a capacity result this surge cannot draw "
                                    f"({type(exc).__name__}: {exc})") from None
    try:
        from surge.report.outputs import write_text_atomically
        write_text_atomically(html_path, page)
    except OSError as exc:
        raise SurgeExit(EXIT_RUNTIME, f"surge report: error: cannot write {html_path}: {exc.strerror}") from None
    click.echo(f"wrote {html_path}", err=True)
    return EXIT_OK
