"""CLI subcommands: each module has `register(subparsers)`; cli.py lists the modules."""
