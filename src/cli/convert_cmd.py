"""`surge convert RECORDING.har` / `surge convert --curl 'curl ...'`: a plan
written from what a user did (surge.convert), on standard output or -o FILE."""
from __future__ import annotations

import click

from surge.cli.main import EXIT_OK, EXIT_USAGE, SurgeExit
from surge.plan.units import UnitError, parse_duration_ns


def _duration(ctx, param, value):
    try:
        if parse_duration_ns(value) <= 0:
            raise UnitError(f"got {value!r}, must be > 0")
    except UnitError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None
    return value


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("recording", metavar="RECORDING.har", required=False)
@click.option("--curl", "curl_command", metavar="'curl ...'", help="Convert one curl command into a one-step plan.")
@click.option("-o", "--output", metavar="FILE", help="Write the plan here instead of standard output.")
@click.option("--keep-static", is_flag=True,
              help="Keep static assets (images, css, js, fonts), each after the step of its page.")
@click.option("--keep-header", "keep_headers", metavar="NAME", multiple=True,
              help="Keep this request header although the rules drop it (e.g. accept-encoding); repeatable.")
@click.option("--max-think", default="10s", show_default=True, callback=_duration, metavar="DURATION",
              help="The longest think time taken from the recorded gaps.")
@click.option("--vus", default=1, show_default=True, type=click.IntRange(1, 1_000_000),
              help="Virtual users of the plan's closed-model load.")
@click.option("--duration", default="1m", show_default=True, callback=_duration, metavar="DURATION",
              help="The plan's load duration.")
def convert_command(recording, curl_command, output, keep_static, keep_headers, max_think, vus, duration):
    """Write a test plan from RECORDING.har (a browser's HTTP Archive; - reads
    standard input) or from one curl command.  Static assets, the browser's own
    headers, cookies (the cookie jar handles them) and redirect follow-ups are
    left out and listed as comments; secrets become variables: extracted from
    an earlier response when the recording shows where they came from, else
    read from environment variables named at the top of the plan."""
    from surge.convert.errors import ConvertError

    if (recording is None) == (curl_command is None):
        raise click.UsageError("give a RECORDING.har or --curl 'curl ...' (one of them)")
    try:
        if curl_command is not None:
            from surge.convert.curl import convert_curl
            draft = convert_curl(curl_command, vus=vus, duration=duration)
        else:
            from surge.convert.har import read_har
            from surge.convert.journey import Options, convert_recording
            options = Options(keep_static=keep_static, keep_headers=frozenset(h.lower() for h in keep_headers),
                              max_think_s=parse_duration_ns(max_think) / 1e9, vus=vus, duration=duration)
            found = read_har(recording)
            draft = convert_recording(found, options)
            if draft is None:
                raise ConvertError(f"{recording}: no request to convert ({len(found.entries)} entries, none left "
                                   f"after dropping static assets, preflights and redirects; --keep-static keeps "
                                   f"static assets)")
    except ConvertError as exc:
        raise SurgeExit(EXIT_USAGE, f"surge convert: error: {exc}") from None
    from surge.convert.plan_text import plan_text
    text = plan_text(draft)
    if output:
        try:
            from surge.report.outputs import write_text_atomically
            write_text_atomically(output, text)
        except OSError as exc:
            raise SurgeExit(EXIT_USAGE, f"surge convert: error: cannot write -o {output}: "
                                        f"{exc.strerror or exc}") from None
        click.echo(f"wrote {output} ({len(draft.steps)} step{'s' * (len(draft.steps) != 1)})", err=True)
    else:
        click.echo(text, nl=False)
    return EXIT_OK
