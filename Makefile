# Embedding Fine-Tuning Studio. Every target works on a fresh clone: the venv is created on demand.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# torch first, pinned: 2.13.0 is the CPU build; any other request pulls a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
EMBED_CONFIG ?= assets/configs/default.yaml
MODEL ?= outputs/embedding_model
DATA ?=
TB_PORT ?= 6006
PORT ?= 7860
# Data-parallel training under torchrun: NPROC processes on this machine (one per GPU); on several machines also
# NNODES, NODE_RANK, MASTER_ADDR, MASTER_PORT (from the environment or the command line).
NPROC ?= 1

# Every `key=value` given to make that is not one of make's own variables reaches the config as an override,
# e.g. `make train-embed num_epochs=3 mining.num_negatives=5 'prompts.query=query: '`. Each is rebuilt from its
# unexpanded value and single-quoted for the shell, so spaces, colons, quotes, `#`, `$` and unicode arrive exactly as
# typed (MAKEOVERRIDES escapes spaces and `$`, and make's functions split words at the escaped spaces). Make strips
# the spaces right after `=`, as for any make variable.
MAKE_VARS := PYTHON VENV TORCH_SPEC EMBED_CONFIG MODEL DATA TB_PORT PORT NPROC NNODES NODE_RANK MASTER_ADDR \
	MASTER_PORT RUN_DIR QUERY TEXT_A TEXT_B CORPUS PYTEST_ARGS TEST_WORKERS BENCH_ARGS DOCS INDEX RAG_OUTPUT QUESTIONS RAG_K RAG_FORMAT
CLI_VARS := $(sort $(foreach v,$(.VARIABLES),$(if $(filter command line,$(origin $(v))),$(v))))
OVERRIDES = $(foreach v,$(filter-out $(MAKE_VARS),$(CLI_VARS)),'$(v)=$(subst ','\'',$(value $(v)))')

.PHONY: install dev test test-fast studio setup-embed-dirs validate-embed train-embed train-embed-tb mine-embed \
        eval-embed infer-embed bench lint clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed: $(VENV)/bin/python pyproject.toml
	$(PIP) install --quiet "$(TORCH_SPEC)"
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.dev-installed: $(VENV)/.installed
	$(PIP) install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

dev: $(VENV)/.dev-installed

# The suite runs in TEST_WORKERS processes (pytest-xdist), one test file per worker, each with its share of the
# cores (tests/conftest.py); tests that start several training processes themselves (torchrun) run afterwards,
# alone with every core. Exit code 5 = "no test selected", e.g. by PYTEST_ARGS naming a file of only one kind.
TEST_WORKERS ?= 2

test: dev lint
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile -m "not alone" $(PYTEST_ARGS) || [ $$? -eq 5 ]
	$(PY) -m pytest -m alone $(PYTEST_ARGS) || [ $$? -eq 5 ]

test-fast: dev
	$(PY) -m pytest -m "not e2e and not slow" $(PYTEST_ARGS)

lint: dev
	$(VENV)/bin/ruff check core studio tests app.py scripts
	$(VENV)/bin/ruff format --check core studio tests app.py scripts
	$(VENV)/bin/lint-imports  # the package layers of pyproject.toml: imports go downward only

studio: install
	GRADIO_SERVER_PORT=$${GRADIO_SERVER_PORT:-$(PORT)} $(PY) app.py

setup-embed-dirs: install
	$(PY) -m core setup-dirs

validate-embed: install
	$(PY) -m core validate-config --config $(EMBED_CONFIG) $(OVERRIDES)

DDP_FLAGS = --nproc $(NPROC) $(if $(NNODES),--nnodes $(NNODES)) $(if $(NODE_RANK),--node-rank $(NODE_RANK)) \
	$(if $(MASTER_ADDR),--master-addr $(MASTER_ADDR)) $(if $(MASTER_PORT),--master-port $(MASTER_PORT)) \
	$(if $(RUN_DIR),--run-dir $(RUN_DIR))

train-embed: install
	$(PY) -m core train --config $(EMBED_CONFIG) $(DDP_FLAGS) $(OVERRIDES)

train-embed-tb: install
	$(PY) -m core train --config $(EMBED_CONFIG) --tensorboard --tensorboard-port $(TB_PORT) $(DDP_FLAGS) $(OVERRIDES)

mine-embed: install
	$(PY) -m core mine --config $(EMBED_CONFIG) $(OVERRIDES)

eval-embed: install
	$(PY) -m core eval --model $(MODEL) --config $(EMBED_CONFIG) $(if $(DATA),--data $(DATA)) $(OVERRIDES)

infer-embed: install
	$(PY) -m core similarity --model $(MODEL) "$${TEXT_A:-How do I reset my password?}" "$${TEXT_B:-Steps to change a forgotten login password}"
	$(PY) -m core search --model $(MODEL) --config $(EMBED_CONFIG) $(if $(CORPUS),--corpus $(CORPUS)) -k 5 "$${QUERY:-How do I reset my password?}"

bench: dev
	$(PY) -m tests.benchmarks.run $(BENCH_ARGS)

clean:
	rm -rf runs outputs workspace test-artifacts .pytest_cache

# RAG: index a folder of documents with the fine-tuned model, then build an LLM training set from it,
# e.g. `make rag-index DOCS=data/raw/domain_docs`, `make rag-dataset QUESTIONS=data/raw/questions.txt`.
DOCS ?= data/raw/domain_docs
INDEX ?= outputs/doc_index
RAG_OUTPUT ?= data/processed/rag_enhanced_data.jsonl
QUESTIONS ?=
RAG_K ?= 3
RAG_FORMAT ?= plain

.PHONY: rag-index rag-dataset

rag-index: install
	$(PY) -m core index build --model $(MODEL) --documents $(DOCS) --out $(INDEX)

rag-dataset: install
	$(PY) -m core rag-dataset --embedding-model $(MODEL) --documents $(DOCS) --output $(RAG_OUTPUT) \
	  -k $(RAG_K) --format $(RAG_FORMAT) $(if $(QUESTIONS),--questions $(QUESTIONS))
