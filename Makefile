.PHONY: install test bench demo
PY ?= python3

install:
	$(PY) -m pip install torch==2.13.0 -e ".[test]"

test:
	$(PY) -m pytest -q

demo:
	workbench --session demo

# Every benchmark prints one JSON line; add DEVICE=cuda on a GPU server.
DEVICE ?= cpu
bench:
	$(PY) -m benchmarks --device $(DEVICE)
