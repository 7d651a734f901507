# The two commands a new user needs (see README.md). Both install everything from nothing.
.PHONY: run test setup lint

setup:
	bash scripts/setup.sh

# The main job: evaluate the default model on every task and build the leaderboard page.
run:
	bash scripts/setup.sh
	.venv/bin/evalboard quickstart

# The test suite (installs the sandbox, MultiPL-E's language runtimes, a headless browser and vLLM-on-CPU first).
test:
	bash scripts/setup.sh --test
	bash scripts/lint.sh
	.venv/bin/python -m pytest -q -ra

# ruff and mypy on the package (also the first step of `make test`).
lint:
	bash scripts/lint.sh
