"""`python -m surge` runs the CLI."""
from surge.cli.main import main

main()
