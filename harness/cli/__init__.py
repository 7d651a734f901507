"""The `evalboard` command. Bad input ends with one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from evalboard.errors import UserError

COMMAND_MODULES = ("run", "tasks", "quickstart", "compare", "leaderboard", "import_runs", "show", "validate", "runs", "arena")


class _OneLineErrors(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit code 2), like every other bad input."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineErrors(prog="evalboard", description="Benchmark language models and publish a leaderboard.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"evalboard.cli.commands.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except UserError as exc:
        print(f"evalboard: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("evalboard: interrupted; answers received so far are cached and will not be asked again",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
