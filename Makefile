# Two commands do all the set-up on a fresh machine:
#   make train   installs into .venv (via `make setup`) and trains the default model
#   make test    installs into .venv and runs the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Use the MNIST copy beside the project when there is one; otherwise digitrec
# downloads (and checksums) the files into ~/.cache/digitrec/mnist.
ifneq ($(wildcard ../shared/data/mnist),)
export DIGITREC_DATA ?= $(abspath ../shared/data/mnist)
endif

.PHONY: setup train fonts lint test test-slow test-all mutate bench clean web-vendor

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first and pinned: the pin picks the local CPU wheel, not the CUDA build
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# onnxruntime-web (WebAssembly) for the drawing page's in-browser reading, pinned and checksummed; fetched
# with npm, not committed (14 MB: README, "Reading in the browser")
ORT_WEB_VERSION := 1.30.0
web-vendor:
	bash tools/web-vendor.sh $(ORT_WEB_VERSION) src/digitrec/server/static/vendor

train: setup
	$(BIN)/digitrec train --out runs/default --overwrite

# the handwriting fonts that `train --fonts` (the shipped recipe) mixes in: fetched once with npm and
# apt-get into $DIGITREC_FONTS or ~/.cache/digitrec/fonts (docs/writers.md)
fonts: setup
	$(BIN)/digitrec fonts

# the rooms import only downwards and without cycles (pyproject's [tool.importlinter]); the code is tidy
lint: setup
	$(BIN)/lint-imports --no-cache
	$(BIN)/ruff check src tests bench

test: lint web-vendor
	$(BIN)/pytest -q -m "not slow"

# the slow-marked tests alone (int8 accuracy, distributed resume and two nodes, Keras B/C/E): CI runs them too
test-slow: setup web-vendor
	$(BIN)/pytest -q -m slow

test-all: lint web-vendor
	$(BIN)/pytest -q

# mutation testing (mutmut) of the modules in pyproject's [tool.mutmut]: slow, not part of CI; docs/testing.md
mutate: setup
	$(BIN)/mutmut run --max-children 2
	$(BIN)/mutmut results

bench: setup
	$(BIN)/python bench/train_speed.py

clean:
	rm -rf $(VENV) runs .pytest_cache
