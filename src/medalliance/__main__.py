"""`python -m medalliance`: the command line."""

from medalliance.cli.main import main

main()
