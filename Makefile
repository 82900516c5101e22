# Hearth: `make setup`, `make test` (the whole suite), `make test-fast`, `make bench`.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.hearth-installed
TESTDATA := .cache/testdata

.PHONY: setup test test-fast testdata bench lock clean

setup: $(STAMP)

# Re-runs only when the pins change; otherwise `make setup` is a no-op.
$(STAMP): pyproject.toml requirements.lock
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -e .
	@touch $@

# Real PDFs for the tests and benchmarks: Debian's R and Octave manuals (not stored in the repo).
testdata: $(TESTDATA)/.done
$(TESTDATA)/.done:
	@mkdir -p $(TESTDATA)/debs
	cd $(TESTDATA)/debs && (apt-get download r-doc-pdf octave-doc || (apt-get update -qq && apt-get download r-doc-pdf octave-doc))
	for deb in $(TESTDATA)/debs/*.deb; do dpkg-deb -x $$deb $(TESTDATA)/root; done
	@touch $@

test: setup testdata
	$(PY) -m pytest -q -ra

test-fast: setup testdata
	$(PY) -m pytest -q -ra -m "not slow"

bench: setup testdata
	$(PY) bench/ingest.py

lock:
	$(PY) -m pip freeze --exclude-editable | grep -v '^hearth' > requirements.lock.new && \
	  { head -2 requirements.lock; cat requirements.lock.new; } > requirements.lock.tmp && \
	  mv requirements.lock.tmp requirements.lock && rm requirements.lock.new

clean:
	rm -rf $(VENV) .cache .pytest_cache
