"""The `medalliance` command line."""
