# Two entry points: `make demo` (main job on the embedded default) and `make test` (all tests),
# plus `make lab` (JupyterLab on notebooks/). Each one sets up .venv on first use (no root needed);
# set-up is skipped while pyproject.toml and constraints.txt are unchanged.
# The library declares version ranges (pyproject.toml); the exact pins live in constraints.txt.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet -c constraints.txt
EXTRAS := demo,figures,notebooks,dev
STAMP := $(VENV)/.stamp-$(shell cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)
LAB_STAMP := $(VENV)/.lab-$(shell cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)
LAB_PORT ?= 8888
# No display (ssh, container, CI): do not try to open a browser; the URL is printed instead.
LAB_BROWSER := $(if $(or $(DISPLAY),$(WAYLAND_DISPLAY),$(filter Darwin,$(shell uname -s))),,--no-browser)
# Root is never needed, but a container may run as root: Jupyter refuses that without this flag.
LAB_FLAGS := $(LAB_BROWSER) $(if $(filter 0,$(shell id -u)),--allow-root)
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: setup demo test test-unit test-integration test-notebooks lab bench figures clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PIP) torch
	$(PIP) -e '.[$(EXTRAS)]'
	rm -f $(VENV)/.stamp-*
	touch $(STAMP)

$(LAB_STAMP): $(STAMP)
	$(PIP) -e '.[$(EXTRAS),lab]'
	rm -f $(VENV)/.lab-*
	touch $(LAB_STAMP)

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

# JupyterLab on notebooks/ with the project's environment (.venv; installs the `lab` extra).
lab: $(LAB_STAMP)
	@echo "JupyterLab on notebooks/: open http://localhost:$(LAB_PORT)/lab (the token is in the URL printed below; Ctrl-C stops it)"
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks --ServerApp.port=$(LAB_PORT) $(LAB_FLAGS)

# The paper figure set in figures/ (PNG + SVG), rebuilt from the demo run directory.
figures: $(STAMP)
	test -f runs/demo/run.json || $(MAKE) demo
	$(VENV)/bin/clas-lens figures runs/demo --formats html,png,svg
	cp runs/demo/figures/*.png runs/demo/figures/*.svg figures/

# Every benchmarks/bench_*.py in turn, one torch thread each (the scripts also call
# torch.set_num_threads(1)); each prints `name: value` lines. bench_demo.py times the cold demo
# run on 2 threads (demo_cold_minutes: the goal is set for 2 cores). GPU: benchmarks/gpu_check.sh.
bench: $(STAMP)
	@for f in benchmarks/bench_*.py; do \
		echo "# $$f"; \
		extra=""; [ "$$f" = benchmarks/bench_demo.py ] && extra="--threads 2"; \
		OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) $$f $$extra || exit 1; \
	done

clean:
	rm -rf $(VENV) build *.egg-info
