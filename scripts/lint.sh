#!/usr/bin/env bash
# ruff and mypy on the package: harness/ (evalboard), tasks/ (evalboard.tasks), leaderboard/
# (evalboard.leaderboard). mypy resolves modules by import name, and the folders are not named
# like the package, so it reads them through a tree of links laid out as the package is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${EVALBOARD_VENV:-.venv}
"$VENV/bin/ruff" check harness tasks leaderboard
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
mkdir "$tree/evalboard"
for entry in harness/*; do ln -s "$PWD/$entry" "$tree/evalboard/"; done
ln -s "$PWD/tasks" "$tree/evalboard/tasks"
ln -s "$PWD/leaderboard" "$tree/evalboard/leaderboard"
(cd "$tree" && "$OLDPWD/$VENV/bin/mypy" --config-file "$OLDPWD/pyproject.toml" -p evalboard)
