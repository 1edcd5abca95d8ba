# Quick start: `make demo` and `make test` on a fresh clone; each sets itself up.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CORE   := $(VENV)/.installed-core
TEST   := $(VENV)/.installed-test
# the core lane's own venv: the core install and the test runners, no runtime (build/: ignored)
CORE_VENV := build/venv-core
CORE_TEST := $(CORE_VENV)/.installed-core-test
DEMO_OUT := build/demo

.PHONY: demo demo-train test test-fast bench fixtures proto schema docs fuzz clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(CORE): $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install -q -e .
	touch $@

$(TEST): $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $@ $(CORE)

## demo: the seed workflow on sklearn digits with the committed models: strip_pruning, fold_batch_norms, int8 weights, full int8, check, verify; one table
demo: $(TEST)
	$(BIN)/python demo/run.py --out $(DEMO_OUT)

## demo-train: retrain the demo's models into fixtures/demo/ (seeded; about 20 s)
demo-train: $(TEST)
	$(BIN)/python demo/train.py

## test: every test, with the test extras (TensorFlow, LiteRT, ...) installed
test: $(TEST)
	$(BIN)/python -m pytest -q

$(CORE_TEST): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(CORE_VENV)
	$(CORE_VENV)/bin/python -m pip install -q --upgrade pip
	$(CORE_VENV)/bin/python -m pip install -q -e ".[core-test]"
	touch $@

## test-fast: the core lane, well under a minute: only the core install and pytest (own venv, build/venv-core; no TensorFlow, no LiteRT), tests that need more skip saying what
test-fast: $(CORE_TEST)
	$(CORE_VENV)/bin/python -m pytest -q -n auto

## bench: benchmarks against the anchors; writes BENCHMARKS.md (BENCH=bench_batch: that one alone, its section only)
BENCH ?=
bench: $(TEST)
	$(BIN)/python bench/run.py $(BENCH)

## fixtures: regenerate the committed fixtures with TensorFlow
fixtures: $(TEST)
	$(BIN)/python fixtures/make_fixtures.py
	$(BIN)/python fixtures/make_tflite_fixtures.py
	$(BIN)/python fixtures/make_pruned_fixtures.py

## proto: regenerate graphtool's GraphDef module from schemas/graphtool_graphdef.proto
proto: $(CORE)
	$(BIN)/python -m pip install -q -e ".[dev]"
	$(BIN)/python -m grpc_tools.protoc -Ischemas --python_out=graphtool/formats/graphdef/_proto \
		schemas/graphtool_graphdef.proto

## schema: regenerate graphtool/formats/tflite/schema.json from TensorFlow's flatc-generated TFLite schema module, and metadata_schema.json from tests/data/metadata_schema.fbs (needs flatc)
schema: $(TEST)
	$(BIN)/python schemas/gen_tflite_schema.py

## docs: regenerate docs/transforms.md (the transform reference) and graphtool/passes/index.json (the registry's index) from the registry
docs: $(CORE)
	$(BIN)/python scripts/update_docs.py

FUZZ_SECONDS ?= 600
FUZZ_TARGET  ?= all
FUZZ_SEED    ?= $(shell date +%s)

# the readers' targets need the core install; differential and the command targets run LiteRT and TensorFlow
FUZZ_SETUP := $(if $(filter all tflite graphdef spec calibration,$(FUZZ_TARGET)),$(CORE),$(TEST))

## fuzz: a fuzz campaign of FUZZ_SECONDS in all (FUZZ_TARGET=tflite|graphdef|spec|calibration|all, differential (LiteRT and TensorFlow judge), commands or one command's target; FUZZ_SEED); failing inputs go to tests/fuzz_corpus/
fuzz: $(FUZZ_SETUP)
	$(BIN)/python fuzz/run.py --target $(FUZZ_TARGET) --seconds $(FUZZ_SECONDS) --seed $(FUZZ_SEED)

clean:
	rm -rf build dist *.egg-info .pytest_cache
