# Two entry points: `make demo` (main job on the embedded default) and `make test` (all tests).
# Each one sets up .venv on first use; set-up is skipped while pyproject.toml is unchanged.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.stamp-$(shell sha256sum pyproject.toml | cut -c1-16)
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: setup demo test test-unit test-integration test-notebooks bench figures clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[figures,notebooks,dev]'
	rm -f $(VENV)/.stamp-*
	touch $(STAMP)

# The whole pipeline on the embedded default (Gemma-3-270M, embedded corpus and tasks).
demo: $(STAMP)
	$(VENV)/bin/clas-lens run clas_lens/configs/demo.toml

# Unit tests and doctests, integration tests on the embedded model, and every notebook.
test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider -rs --durations=15 --doctest-modules --ignore=clas_lens/__main__.py clas_lens tests
	$(PY) -m pytest -q -p no:cacheprovider --nbmake notebooks/*.ipynb

test-unit: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider tests/unit

test-integration: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider tests/integration

test-notebooks: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider --nbmake notebooks/*.ipynb

# The paper figure set in figures/ (PNG + SVG), rebuilt from the demo run directory.
figures: $(STAMP)
	test -f runs/demo/run.json || $(MAKE) demo
	$(VENV)/bin/clas-lens figures runs/demo --formats html,png,svg
	cp runs/demo/figures/*.png runs/demo/figures/*.svg figures/

# Every benchmarks/bench_*.py in turn, one torch thread each (the scripts also call
# torch.set_num_threads(1)); each prints `name: value` lines. GPU: benchmarks/gpu_check.sh.
bench: $(STAMP)
	@for f in benchmarks/bench_*.py; do \
		echo "# $$f"; \
		OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) $$f || exit 1; \
	done

clean:
	rm -rf $(VENV) build *.egg-info
