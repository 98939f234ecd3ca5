# The two commands: `make demo` and `make test`. Both create .venv when missing and install
# everything the project needs. Override the torch requirement with e.g. TORCH=torch==2.5.1.
PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# NiiVue for `brats-ssl review`: one self-contained file of the npm package at an exact version,
# its tarball checked against the registry's integrity (see src/brats_ssl/review/niivue.py).
NIIVUE_VERSION := 0.69.0
NIIVUE_INTEGRITY := sha512-YMjQvJgD1W2b7DuoxkwlC4VxbrgIePRJ5qyQzXKxi2v2MBVg285P/CIQyg46oDDGDIcaNlbd+MhtO/edMbXJkA==
NIIVUE := src/brats_ssl/review/vendor/niivue-$(NIIVUE_VERSION).min.js
NNUNET_STAMP := $(VENV)/.installed-nnunet
export MALLOC_MMAP_MAX_ := 0
export MALLOC_TRIM_THRESHOLD_ := 68719476736

.PHONY: demo test lint install install-test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml Makefile
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

$(NIIVUE):
	rm -rf $(@D)/.npm && mkdir -p $(@D)/.npm
	npm pack --silent --pack-destination $(@D)/.npm @niivue/niivue@$(NIIVUE_VERSION) >/dev/null
	$(PYTHON) -c 'import base64, hashlib, sys; digest = hashlib.sha512(open(sys.argv[1], "rb").read()).digest(); \
	    sys.exit(0 if "sha512-" + base64.b64encode(digest).decode() == sys.argv[2] else "NiiVue tarball: integrity mismatch")' \
	    $(@D)/.npm/niivue-niivue-$(NIIVUE_VERSION).tgz '$(NIIVUE_INTEGRITY)'
	tar -xzOf $(@D)/.npm/niivue-niivue-$(NIIVUE_VERSION).tgz package/build/index.min.js > $@.part
	mv $@.part $@ && rm -rf $(@D)/.npm

# The tests also check nnU-Net exports with nnU-Net itself (the `nnunet` extra, ~1 GB). Its timm
# dependency pulls torchvision, whose newest release would swap torch for a multi-GB CUDA build: the
# constraint holds torch at the build installed above (the matching torchvision installs, unused).
$(NNUNET_STAMP): $(STAMP)
	$(BIN)/python -c 'import torch; print("torch==" + torch.__version__)' > $(VENV)/torch-constraint.txt
	$(BIN)/python -m pip install --quiet -c $(VENV)/torch-constraint.txt -e ".[test,nnunet]"
	touch $(NNUNET_STAMP)

install: $(STAMP) $(NIIVUE)

install-test: $(NNUNET_STAMP) $(NIIVUE)

demo: $(STAMP) $(NIIVUE)
	$(BIN)/brats-ssl demo

# Lint (ruff: pyflakes, pycodestyle, import order, bugbear) and types (mypy on src/), configured in
# pyproject.toml; `make test` runs them before the tests.
lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

# Two pytest workers with one torch thread each: the tests' tiny networks gain little from a second
# thread, and two single-threaded workers fill 2 cores without threads spinning against each other.
# A test file runs in one worker, so its module fixtures are built once. TEST_WORKERS=0: one process.
TEST_WORKERS ?= 2
test: $(NNUNET_STAMP) $(NIIVUE)
	$(MAKE) --no-print-directory lint
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache src/brats_ssl/review/vendor
