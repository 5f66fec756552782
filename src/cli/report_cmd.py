"""`surge report RESULT.json`: remake any report from a result file;
`surge report --recover JOURNAL --json OUT`: a result from a killed run's journal."""
from __future__ import annotations

import click

from surge.cli.main import EXIT_OK, EXIT_USAGE, SurgeExit, worst_exit


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
def report_command(result_path, journal_path, json_path, html_path, csv_path, hlog_path):
    """Print the summary of RESULT.json, or write the reports asked for."""
    from surge.result.load import ResultFileError, load_result
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
            try:
                result = recover(journal_path)
            except JournalError as exc:
                raise SurgeExit(EXIT_USAGE, f"surge report: error: --recover {exc}") from None
        else:
            result = load_result(result_path)
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
