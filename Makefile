# The two commands a newcomer runs (each does its own set-up):
#   make quickstart   the whole journey on this machine against the embedded AWS
#   make test         the test suite
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION = 20

.PHONY: setup quickstart test bench-preprocess clean

setup:
	@bash scripts/setup.sh

quickstart: setup
	.venv/bin/s2s-aws quickstart

test: setup
	.venv/bin/lint-imports --no-cache
	.venv/bin/python -m pytest -q

bench-preprocess: setup
	.venv/bin/python benchmarks/preprocess.py

clean:
	rm -rf .venv .venv-clients .s2s-setup-stamp infra/node_modules infra/cdk.out s2s-quickstart
