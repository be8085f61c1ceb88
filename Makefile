# Two commands for a newcomer: `make demo` and `make test`. Both create .venv when missing, installed
# from the hash-checked lock (requirements/); `make lock` refreshes the lock after a dependency change.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
LOCK   := requirements/lock-linux-py311.txt

.PHONY: demo test install lock system-deps clean lint bench papers

# Debian programs some attacks and tests use: Tesseract (OCR engine), Chromium and pdftoppm (the
# report tests render the HTML and the PDF). Installed when run as root with apt-get; otherwise the
# tests that need them are skipped with the install command as the reason.
DEBIAN_PACKAGES := tesseract-ocr tesseract-ocr-eng chromium poppler-utils

install: $(STAMP)

system-deps:
	@if command -v tesseract >/dev/null && command -v chromium >/dev/null && command -v pdftoppm >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing Debian packages: $(DEBIAN_PACKAGES)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEBIAN_PACKAGES) >/dev/null; \
	else echo "not root with apt-get: tests needing $(DEBIAN_PACKAGES) will be skipped (install them to run those)"; fi

# Every package at the version and sha256 the lock names (pip refuses any other file), then the project
# itself without dependencies, built with the locked setuptools.
$(STAMP): pyproject.toml Makefile $(LOCK)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q --require-hashes -r $(LOCK)
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

# The lock: requirements/lock.in with every extra that `all` and `dev` pull in, resolved for this
# machine (Linux x86_64, Python 3.11) by pip-tools in a venv of its own. Existing pins are kept where
# they still fit; `make lock LOCK_ARGS=--upgrade` moves every package to its newest allowed release.
LOCK_VENV  ?= .lock-venv
LOCK_ARGS  ?=
LOCK_EXTRAS := ocr faces metrics reports scale dp dev

lock:
	test -x $(LOCK_VENV)/bin/pip-compile || { $(PYTHON) -m venv $(LOCK_VENV) && $(LOCK_VENV)/bin/pip install -q pip-tools==7.7.0; }
	CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_VENV)/bin/pip-compile -q --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url \
	  --no-emit-find-links $(foreach e,$(LOCK_EXTRAS),--extra $(e)) $(LOCK_ARGS) -o $(LOCK) pyproject.toml requirements/lock.in

demo: $(STAMP)
	$(VENV)/bin/anonaudit demo --output runs/demo

test: $(STAMP) system-deps
	$(PY) -m pytest -q

# Static checks: ruff (rules in pyproject.toml [tool.ruff]) and lint-imports (the layers and no
# import cycle, [tool.importlinter]).
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

# The paper tables regenerated from the committed configs: scripts/papers.py retrains the tiny targets and
# reruns every paper and membership audit (each step's wall time into docs/results/papers-times.csv, which
# the docs quote), then each run is checked against its snapshot in docs/results/ within its CIs
# (tests/test_papers_reproduce.py). `python scripts/papers.py paper-000` runs one group.
papers: $(STAMP)
	$(PY) scripts/papers.py
	ANONAUDIT_PAPERS=1 $(PY) -m pytest -q tests/test_papers_reproduce.py

bench: $(STAMP)
	for f in benchmarks/[!_]*.py; do $(PY) $$f || exit 1; done

clean:
	rm -rf $(VENV) $(LOCK_VENV) runs .pytest_cache
