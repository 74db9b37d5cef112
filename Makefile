.PHONY: setup test test-fast lint type format demo

setup:
	bash scripts/setup.sh

test:
	python -m pytest -n 2

test-fast:
	python -m pytest -n 2 -m "not slow"

lint:
	python -m ruff check .

type:
	python -m mypy && python -m mypy perf

format:
	python -m ruff check --fix . && python -m ruff format .

demo:
	bash scripts/demo.sh
