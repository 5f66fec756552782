"""`surge report RESULT.json`: remake any report from a result file."""
from __future__ import annotations

import click

from surge.cli.main import EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, SurgeExit


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("result_path", metavar="RESULT.json")
@click.option("--html", "html_path", type=click.Path(dir_okay=False), help="Write the HTML report here.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False),
              help="Write the time series CSV here (and <stem>.steps.csv when the run has steps).")
@click.option("--hlog", "hlog_path", type=click.Path(dir_okay=False), help="Write an HdrHistogram interval log here.")
def report_command(result_path, html_path, csv_path, hlog_path):
    """Print the summary of RESULT.json, or write the reports asked for."""
    from surge.report.load import ResultFileError, load_result

    try:
        result = load_result(result_path)
    except ResultFileError as exc:
        raise SurgeExit(EXIT_USAGE, f"surge report: error: {exc}") from None
    if not (html_path or csv_path or hlog_path):
        from surge.report.summary import render_summary
        try:
            click.echo(render_summary(result))
        except (KeyError, TypeError) as exc:
            raise SurgeExit(EXIT_USAGE, f"surge report: error: {result_path}: incomplete surge result: "
                                        f"no {exc} for the summary") from None
        return EXIT_OK
    write_reports(result, html_path=html_path, csv_path=csv_path, hlog_path=hlog_path, command="surge report")
    return EXIT_OK


def write_reports(result: dict, html_path=None, csv_path=None, hlog_path=None, command="surge run") -> None:
    """Write each report asked for, saying where; a write failure is SurgeExit(1)."""
    from surge.report.hlog import HlogError

    def guarded(option, path, write):
        try:
            return write()
        except OSError as exc:
            raise SurgeExit(EXIT_RUNTIME, f"{command}: error: cannot write {option} {path!r}: "
                                          f"{exc.strerror or exc}") from None

    if html_path:
        from surge.report.html import write_html
        size = guarded("--html", html_path, lambda: write_html(result, html_path))
        click.echo(f"wrote {html_path} ({size / 1_000_000:.1f} MB)", err=True)
    if csv_path:
        from surge.report.csv_export import write_csv
        for path in guarded("--csv", csv_path, lambda: write_csv(result, csv_path)):
            click.echo(f"wrote {path}", err=True)
    if hlog_path:
        from surge.report.hlog import write_hlog
        try:
            count = guarded("--hlog", hlog_path, lambda: write_hlog(result, hlog_path))
        except HlogError as exc:
            raise SurgeExit(EXIT_USAGE, f"{command}: error: --hlog: {exc}") from None
        click.echo(f"wrote {hlog_path} ({count} intervals)", err=True)
