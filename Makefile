# Every target builds the virtual environment it needs when it is missing (only python3 is required).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
MODEL_DIR ?= forecast-model

.PHONY: test test-all fuzz demo lint fmt bench bench-accuracy clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@ $(VENV)/.installed

test: $(VENV)/.installed-test  ## the whole fast suite (what CI runs)
	$(BIN)/python -m pytest -q -m "not slow"

test-all: $(VENV)/.installed-test  ## including tests marked slow
	$(BIN)/python -m pytest -q

RIVER := sample_data/river.csv --target discharge --future-covariates rain --covariates temp

SAFETY := tests/test_safety_data.py tests/test_safety_numbers.py tests/test_manifest.py tests/test_safety_artifact.py \
	tests/test_safety_cli.py tests/test_hostile.py

fuzz: $(VENV)/.installed-test  ## the long hostile-input and kill-test profile (issue 14's classes, thousands of cases)
	FUZZ_EXAMPLES=3000 KILL_TRIALS=50 $(BIN)/python -m pytest -q -p no:cacheprovider tests/test_fuzz.py \
		tests/test_reliability.py -k "survive or sigkill" -s
	FUZZ_EXAMPLES=1000 $(BIN)/python -m pytest -q -p no:cacheprovider $(SAFETY)

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[bench]'
	touch $@ $(VENV)/.installed

.venv-neuralforecast/bin/python:  # neuralforecast brings Lightning and Ray: its own environment
	$(PYTHON) -m venv .venv-neuralforecast
	.venv-neuralforecast/bin/python -m pip install -q torch==2.13.0 neuralforecast

bench: $(VENV)/.installed-bench .venv-neuralforecast/bin/python  ## speed benchmarks against the peers (docs/benchmarks.md)
	$(BIN)/python benchmarks/train_throughput.py
	$(BIN)/python benchmarks/esn.py
	$(BIN)/python benchmarks/cold_start.py
	$(BIN)/python benchmarks/compilations.py
	$(BIN)/python benchmarks/scale.py
	$(BIN)/python benchmarks/scaling.py
	$(BIN)/python benchmarks/processes.py
	$(BIN)/python benchmarks/coverage.py
	$(BIN)/python benchmarks/update.py

.venv-peers/bin/python:  # statsforecast needs pandas < 3: its own environment
	$(PYTHON) -m venv .venv-peers
	.venv-peers/bin/python -m pip install -q statsforecast

bench-accuracy: $(VENV)/.installed .venv-peers/bin/python  ## M1 accuracy against AutoETS/AutoTheta (docs/accuracy.md)
	$(BIN)/python benchmarks/accuracy.py

demo: $(VENV)/.installed  ## inspect, train and predict on the sample data
	$(BIN)/forecast inspect sample_data/sales.csv
	$(BIN)/forecast inspect $(RIVER)
	$(BIN)/forecast train $(RIVER) --model-dir $(MODEL_DIR)
	$(BIN)/forecast predict --model-dir $(MODEL_DIR) --future sample_data/river_rain_forecast.csv --horizon 7 --levels 80,95
	$(BIN)/forecast update sample_data/river.csv --model-dir $(MODEL_DIR)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check forecast_cli tests benchmarks

fmt: $(VENV)/.installed-test
	$(BIN)/ruff format forecast_cli tests benchmarks

clean:
	rm -rf $(VENV) .venv-peers .venv-neuralforecast $(MODEL_DIR) .pytest_cache .hypothesis *.egg-info
