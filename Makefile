# The two commands: `make demo` and `make test`. Both create .venv when missing and install
# everything the project needs. Override the torch requirement with e.g. TORCH=torch==2.5.1.
PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NNUNET_STAMP := $(VENV)/.installed-nnunet
export MALLOC_MMAP_MAX_ := 0
export MALLOC_TRIM_THRESHOLD_ := 68719476736

.PHONY: demo test install install-test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml Makefile
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

# The tests also check nnU-Net exports with nnU-Net itself (the `nnunet` extra, ~1 GB). Its timm
# dependency pulls torchvision, whose newest release would swap torch for a multi-GB CUDA build: the
# constraint holds torch at the build installed above (the matching torchvision installs, unused).
$(NNUNET_STAMP): $(STAMP)
	$(BIN)/python -c 'import torch; print("torch==" + torch.__version__)' > $(VENV)/torch-constraint.txt
	$(BIN)/python -m pip install --quiet -c $(VENV)/torch-constraint.txt -e ".[test,nnunet]"
	touch $(NNUNET_STAMP)

install: $(STAMP)

install-test: $(NNUNET_STAMP)

demo: $(STAMP)
	$(BIN)/brats-ssl demo

test: $(NNUNET_STAMP)
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
