"""`surge report RESULT.json`: remake any report from a result file."""
from __future__ import annotations

import click

from surge.cli.main import EXIT_OK, EXIT_USAGE, SurgeExit, worst_exit


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("result_path", metavar="RESULT.json")
@click.option("--html", "html_path", metavar="FILE", help="Write the HTML report here.")
@click.option("--csv", "csv_path", metavar="FILE",
              help="Write the time series CSV here (and <stem>.steps.csv when the run has steps).")
@click.option("--hlog", "hlog_path", metavar="FILE", help="Write an HdrHistogram interval log here.")
def report_command(result_path, html_path, csv_path, hlog_path):
    """Print the summary of RESULT.json, or write the reports asked for."""
    from surge.result.load import ResultFileError, load_result
    from surge.report.outputs import OutputPathError, check_paths, requested, write_all

    files = requested(html_path=html_path, csv_path=csv_path, hlog_path=hlog_path)
    try:
        check_paths(files, inputs={"RESULT.json": result_path})
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
