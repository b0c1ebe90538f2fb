# vibevoice-api — developer commands. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of torch available locally; a plain `torch` would pull a multi-GB CUDA build.
TORCH_VERSION ?= 2.13.0
MODEL_DIR ?= $(CURDIR)/models
TINY_DIR ?= $(CURDIR)/.cache/tiny-models
DIR ?= $(TINY_DIR)
PYTEST_ARGS ?=
# Who generates ASR tokens in `make run` / `make run-tiny`: transformers (in the ASR process) or vllm (a local
# vLLM server beside the stack, from its own venv under .cache/, installed on first use).
ASR_BACKEND ?= $(or $(VIBEVOICE_ASR_BACKEND),transformers)
APT_PACKAGES := ffmpeg espeak-ng sox chromium

.DEFAULT_GOAL := help
.PHONY: help install system-deps test test-openwebui loadtest soak fuzz lint format run run-tiny tiny-models bench gpu-check fidelity-asr clean

help: ## list the commands
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-16s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python shared/pyproject.toml gateway/pyproject.toml asr-service/pyproject.toml tts-service/pyproject.toml live/pyproject.toml requirements-dev.txt
	$(BIN)/pip install -q torch==$(TORCH_VERSION)
	$(BIN)/pip install -q -e shared -e gateway -e asr-service -e tts-service -e live -r requirements-dev.txt
	# GE2E voice-encoder weights for known speakers (--no-deps: its librosa/webrtcvad imports are never used);
	# py3langid declares numpy>=2 but runs on numpy 1.26 (NGC images pin it).
	$(BIN)/pip install -q --no-deps resemblyzer==0.1.4 py3langid==0.4.0
	@touch $@

install: $(VENV)/.installed ## create .venv with the five packages and the test tools (CPU torch)

system-deps: ## apt-get install ffmpeg, espeak-ng, sox and chromium when missing (test fixtures, decoder, browser tests)
	@missing=""; for p in $(APT_PACKAGES); do command -v $$p >/dev/null || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $(APT_PACKAGES) >/dev/null; \
	fi

test: system-deps install ## install everything, then run the whole test suite
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: install ## ruff (lint + format check) and a dependency audit (pip-audit; fails on known vulnerabilities)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pip-audit --vulnerability-service pypi --progress-spinner off --skip-editable

format: install ## ruff format + autofix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

tiny-models: install ## write tiny random models + voice presets in the VIBEVOICE_MODEL_DIR layout: make tiny-models DIR=...
	$(BIN)/python -m vibevoice_api.asr.engine.tiny $(DIR)
	$(BIN)/python -m vibevoice_api.tts.engine.tiny $(DIR)

run: install ## gateway :8080 + ASR :8081 + TTS :8082 + live :8083 as local processes on MODEL_DIR (Ctrl-C stops all); ASR_BACKEND=vllm adds a vLLM server :8000
	VIBEVOICE_MODEL_DIR=$(MODEL_DIR) VIBEVOICE_ASR_BACKEND=$(ASR_BACKEND) $(BIN)/python deploy/local/run_stack.py

run-tiny: install ## same as `make run`, on tiny random models (no weights needed)
	@test -d $(TINY_DIR)/VibeVoice-ASR -a -d $(TINY_DIR)/VibeVoice-Realtime-0.5B || $(MAKE) tiny-models DIR=$(TINY_DIR)
	VIBEVOICE_MODEL_DIR=$(TINY_DIR) VIBEVOICE_AUTO_DOWNLOAD=false VIBEVOICE_ASR_BACKEND=$(ASR_BACKEND) $(BIN)/python deploy/local/run_stack.py

test-openwebui: system-deps install ## only the real Open WebUI integration suite
	$(BIN)/python -m pytest -q tests/integration/openwebui

loadtest: system-deps install ## full load test: the stack at 2x and 10x capacity for a minute each
	$(BIN)/python bench/loadtest.py --seconds 60 --levels 2,10

SOAK_SECONDS ?= 600
soak: system-deps install ## whole stack (ASR_BACKEND=vllm: + vLLM) 10 min at 2x capacity, mixed speech/SSE/transcription/realtime load
	$(BIN)/python bench/soak.py --seconds $(SOAK_SECONDS) --level 2 --backend $(ASR_BACKEND)

FUZZ_EXAMPLES ?= 1500
FUZZ_EVENTS ?= 3000
fuzz: system-deps install ## schemathesis over the four OpenAPI schemas (>= 10,000 cases) + the realtime event fuzzer at depth
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FUZZ_MIN_CASES=10000 FUZZ_EVENTS=$(FUZZ_EVENTS) $(BIN)/python -m pytest -q -s tests/hardening/test_fuzz.py tests/hardening/test_realtime_fuzz.py

GPU_CHECK_ARGS ?=
gpu-check: install ## GPU smoke check: both engines in bf16 per attention implementation (MODEL_DIR=... for real weights)
	$(BIN)/python deploy/tools/gpu_check.py $(if $(filter command line environment,$(origin MODEL_DIR)),--model-dir $(MODEL_DIR)) $(GPU_CHECK_ARGS)

bench: install ## speed figures (ratios measured side by side), see bench/README.md
	$(BIN)/python bench/run_all.py

REF ?=
REF_VENV ?= .cache/vibevoice-ref-asr-venv
fidelity-asr: install ## ASR token-for-token against Microsoft's code: make fidelity-asr REF=<exported microsoft/VibeVoice>
	@test -n "$(REF)" || { echo "REF=<exported checkout of microsoft/VibeVoice> is required (tests/fidelity/README.md)"; exit 2; }
	@test -x $(REF_VENV)/bin/python || { $(PYTHON) -m venv $(REF_VENV) && $(REF_VENV)/bin/pip install -q torch==$(TORCH_VERSION) \
	  && $(REF_VENV)/bin/pip install -q transformers==4.57.1 accelerate diffusers librosa scipy tqdm; }
	$(BIN)/python tests/fidelity/compare_asr_reference.py --ref $(REF) --ref-python $(REF_VENV)/bin/python --show-unpadded

clean: ## remove caches (keeps .venv)
	rm -rf .pytest_cache .ruff_cache .hypothesis .cache/tiny-models

-include deploy/deploy.mk
