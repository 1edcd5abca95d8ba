# Quick start: `make demo` and `make test` on a fresh clone; each sets itself up.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CORE   := $(VENV)/.installed-core
TEST   := $(VENV)/.installed-test
DEMO_OUT := build/demo

.PHONY: demo test bench fixtures proto readme rules fuzz clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(CORE): $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install -q -e .
	touch $@

$(TEST): $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $@ $(CORE)

## demo: inspect a bundled frozen graph, round-trip it through text and binary, compare
demo: $(CORE)
	@mkdir -p $(DEMO_OUT)
	$(BIN)/graphtool inspect fixtures/graphdef/keras2_cnn.pb
	$(BIN)/graphtool convert fixtures/graphdef/keras2_cnn.pb $(DEMO_OUT)/keras2_cnn.pbtxt
	$(BIN)/graphtool convert $(DEMO_OUT)/keras2_cnn.pbtxt $(DEMO_OUT)/keras2_cnn.pb
	@cmp fixtures/graphdef/keras2_cnn.pb $(DEMO_OUT)/keras2_cnn.pb \
		&& echo "round trip .pb -> .pbtxt -> .pb: byte-identical"

## test: every test, with the test extras (TensorFlow, LiteRT, ...) installed
test: $(TEST)
	$(BIN)/python -m pytest -q

## bench: benchmarks against the anchors; writes BENCHMARKS.md
bench: $(TEST)
	$(BIN)/python bench/run.py

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

## readme: regenerate README's transform reference from the registry
readme: $(CORE)
	$(BIN)/python scripts/update_readme.py

FUZZ_SECONDS ?= 600
FUZZ_TARGET  ?= all
FUZZ_SEED    ?= $(shell date +%s)

## fuzz: a fuzz campaign of FUZZ_SECONDS in all (FUZZ_TARGET=tflite|graphdef|spec|calibration|all, FUZZ_SEED); failing inputs go to tests/fuzz_corpus/
fuzz: $(CORE)
	$(BIN)/python fuzz/run.py --target $(FUZZ_TARGET) --seconds $(FUZZ_SECONDS) --seed $(FUZZ_SEED)

## rules: copy the compatibility rule tables from schemas/compat into the package
rules:
	cp schemas/compat/*.json graphtool/analysis/rules/

clean:
	rm -rf build dist *.egg-info .pytest_cache
