"""`surge validate PLAN`: check a plan and print every problem, one per line."""
from __future__ import annotations

import click

from surge.cli.main import EXIT_OK, EXIT_USAGE, SurgeExit


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("plan_path", metavar="PLAN")
def validate_command(plan_path):
    """Check PLAN (YAML, or TOML for .toml) without sending anything: prints
    'PLAN: ok (...)' and exits 0, or prints every problem and exits 2."""
    from surge.plan.validate import PlanValidationError, load_plan

    try:
        plan = load_plan(plan_path)
    except PlanValidationError as exc:
        raise SurgeExit(EXIT_USAGE, "\n".join(exc.problems)) from None
    scenarios, steps = len(plan.scenarios), len(plan.steps)
    click.echo(f"{plan_path}: ok ({scenarios} scenario{'s' * (scenarios != 1)}, "
               f"{steps} step{'s' * (steps != 1)})")
    return EXIT_OK
