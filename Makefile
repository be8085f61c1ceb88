# Two commands for a newcomer: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test install system-deps clean lint bench

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

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip "setuptools<82" wheel
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q --no-deps facenet-pytorch==2.5.3
	$(PY) -m pip install -q -e ".[all,dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/anonaudit demo --output runs/demo

test: $(STAMP) system-deps
	$(PY) -m pytest -q

bench: $(STAMP)
	for f in benchmarks/[!_]*.py; do $(PY) $$f || exit 1; done

clean:
	rm -rf $(VENV) runs .pytest_cache
