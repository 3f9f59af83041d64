"""`python -m medalliance.cli`: the same as the `medalliance` command."""

from medalliance.cli.main import main

main()
