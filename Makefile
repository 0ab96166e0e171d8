# perf2score: set-up, tests, demo.  `make test` and `make demo` do all set-up themselves.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATA ?= ../shared/data
CACHE ?= .cache

.PHONY: setup test lint demo serve prepare corpus calibrate clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first and on its own: the pinned CPU wheel, never a CUDA build.
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[test,web,audio,ray]"
	# the audio transcriber, without its dependencies (see pyproject.toml, the audio extra)
	$(BIN)/python -m pip install -q --no-deps transkun==2.0.1
	touch $(STAMP)

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples

demo: setup
	$(BIN)/python examples/demo.py

serve: setup
	$(BIN)/perf2score serve

prepare: setup
	$(BIN)/perf2score data prepare --asap $(DATA)/asap-m2st.tar.xz --nasap $(DATA)/nasap.tar.xz \
		--splits $(DATA)/splits/asap_splits.csv --out $(CACHE)/prepared

corpus: setup
	$(BIN)/perf2score data corpus --corpus $(DATA)/scores-corpus.tar.xz \
		--prepared $(CACHE)/prepared --out $(CACHE)/corpus

calibrate: setup
	$(BIN)/perf2score calibrate --calibration $(DATA)/calibration-musescore3-test.tar.xz \
		--asap $(DATA)/asap-m2st.tar.xz --out $(CACHE)/calibration

clean:
	rm -rf $(VENV) $(CACHE) build src/*.egg-info
