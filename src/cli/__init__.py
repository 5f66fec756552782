"""Command-line interface (click): parse, call plan/run/report, map errors to exit codes."""
