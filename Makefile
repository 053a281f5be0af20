# genrecraft: set-up, tests and the offline demo.
#
#   make demo    set up (first time ~6 min, ~9 GB) and run the whole loop offline on the built-in corpus
#   make test    set up and run the test suite (what CI runs)
#   make test-fast  the tests that take under ~1 s each (about a minute on 2 cores)
#
# Set-up is keyed on requirements/constraints.txt and pyproject.toml: re-running when neither changed does
# not reinstall anything. Override the interpreter with `make PYTHON=python3.11 ...`.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
LOCK := requirements/constraints.txt
AUDIOCRAFT_VERSION := 1.3.0
AUDIOCRAFT_SRC := $(VENV)/src/audiocraft-$(AUDIOCRAFT_VERSION)
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
SETUP_KEY := $(shell cat $(LOCK) pyproject.toml | sha256sum | cut -c1-16)
STAMP := $(VENV)/.installed-$(SETUP_KEY)

# System tools: command or file -> Debian package.
SYSDEPS := ffmpeg:ffmpeg fluidsynth:fluidsynth /usr/share/sounds/sf2/FluidR3_GM.sf2:fluid-soundfont-gm \
           chromium:chromium chromedriver:chromium-driver espeak-ng:espeak-ng

PYTEST_ARGS ?=

.PHONY: help venv sysdeps test test-fast demo lock bench clean-venv

help:
	@sed -n '2,9p' Makefile | sed 's/^# \{0,1\}//'

venv: $(STAMP)

$(STAMP):
	@echo "==> Setting up $(VENV) (set-up key $(SETUP_KEY)). First time: ~6 min and ~9 GB (torch is a CUDA build)."
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PIP) install -q --upgrade pip setuptools wheel
	@# audiocraft: sdist only on PyPI, its pins conflict with a modern torch, and its Hydra config tree is not
	@# installed by a wheel build. An editable install of the unpacked sdist keeps config/ next to the package.
	@if [ ! -f $(AUDIOCRAFT_SRC)/setup.py ]; then \
	  mkdir -p $(VENV)/src && \
	  $(PIP) download -q --no-deps --no-binary :all: audiocraft==$(AUDIOCRAFT_VERSION) -d $(VENV)/src && \
	  tar xzf $(VENV)/src/audiocraft-$(AUDIOCRAFT_VERSION).tar.gz -C $(VENV)/src; fi
	@$(PIP) install -q --no-deps --no-build-isolation -e $(AUDIOCRAFT_SRC)
	@$(PIP) install -q -c $(LOCK) -e '.[dev]'
	@$(PY) -m genrecraft.core.compat check
	@rm -f $(VENV)/.installed-*
	@touch $@

sysdeps:
	@missing=(); \
	for entry in $(SYSDEPS); do \
	  what=$${entry%%:*}; pkg=$${entry##*:}; \
	  if [[ $$what == /* ]]; then [ -e "$$what" ] || missing+=("$$pkg"); \
	  else command -v "$$what" >/dev/null || missing+=("$$pkg"); fi; \
	done; \
	if [ $${#missing[@]} -gt 0 ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "==> Installing system packages: $${missing[*]}"; \
	    (apt-get install -y -q --no-install-recommends "$${missing[@]}" >/dev/null 2>&1 || \
	     (apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "$${missing[@]}" >/dev/null)); \
	  else \
	    echo "error: missing system packages: $${missing[*]}" >&2; \
	    echo "Install them with: sudo apt-get install $${missing[*]}" >&2; \
	    echo "(ffmpeg: audio decoding/encoding; fluidsynth + fluid-soundfont-gm: songs on sampled instruments for the label tests;" >&2; \
	    echo " chromium + chromium-driver: the listening-page tests)" >&2; \
	    exit 1; \
	  fi; \
	fi

test: venv sysdeps
	@$(PY) -m pytest $(PYTEST_ARGS)

test-fast: venv sysdeps
	@$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

demo: venv sysdeps
	@$(PY) -m genrecraft.demo

bench: venv sysdeps
	@for b in bench/bench_*.py; do echo "==> $$b"; $(PY) $$b; done

# Rewrite the constraints file from what is installed now (after a deliberate upgrade in $(VENV)).
lock:
	@{ sed -n '/^#/p' $(LOCK); $(PIP) freeze --exclude-editable | grep -v '^-e\|^#'; } > $(LOCK).tmp
	@mv $(LOCK).tmp $(LOCK)

clean-venv:
	rm -rf $(VENV)
