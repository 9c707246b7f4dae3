# ocrtrain — the two front-door commands are `make dashboard` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8866

.PHONY: setup test test-install dashboard lab demo bench bench-deps levers clean-venv browser-deps deps

setup: $(STAMP)

# pyproject.toml declares every package (runtime + extras); torch and torchvision come together from PyPI.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dashboard,synth,tracking,test]'
	# trdg 1.8.0 pins a yanked arabic-reshaper and an old python-bidi: install it without its pins
	# (its real dependencies are the synth extra).
	$(BIN)/python -m pip install -q --no-deps trdg==1.8.0
	# rfc3987-syntax builds Lark parsers at import and slows every Jupyter start (KNOWN-TRAPS).
	-$(BIN)/python -m pip uninstall -q -y rfc3987-syntax
	touch $(STAMP)

# requirements.txt, environment.yml and binder/environment.yml are written from pyproject.toml.
deps:
	$(BIN)/python tools/deps.py --write

browser-deps:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

test: setup browser-deps
	$(BIN)/python -m pytest -q tests

# Issue 13's done-when check: a fresh venv installs '.[dashboard,synth]' from PyPI (torch reused), then
# ocrtrain --version, synth and the dashboard in Chromium (about 3 min here, 133 s of it pip; downloads
# all but torch). .ci/run runs it after make test.
test-install: setup browser-deps
	OCRTRAIN_FRESH_INSTALL=1 $(BIN)/python -m pytest -q -s tests/test_fresh_install.py

# Datasets and runs live in OCRTRAIN_HOME (default ~/ocrtrain), shared with the CLI: see ocrtrain/home.py.
# `ocrtrain dashboard`: Voila on 127.0.0.1 with kernel culling (ocrtrain/cli/dashboard.py has the flags);
# `ocrtrain lab`: JupyterLab on OCRTRAIN_HOME.
dashboard: export OCRTRAIN_HOME ?= $(HOME)/ocrtrain
dashboard: setup
	$(BIN)/ocrtrain dashboard --port=$(PORT)

lab: export OCRTRAIN_HOME ?= $(HOME)/ocrtrain
lab: setup
	$(BIN)/ocrtrain lab

demo: setup
	$(BIN)/python -m ocrtrain run-notebook pipeline --log-output

# The peers the accuracy benches compare with: Tesseract 5 with its Norwegian model (Debian packages).
bench-deps:
	@tesseract --list-langs 2>/dev/null | grep -qx nor || (apt-get update -qq && \
		apt-get install -y -qq tesseract-ocr tesseract-ocr-nor >/dev/null)

# The lever table in the README (#12): about an hour per two levers on a 2-core CPU.
levers: setup bench-deps
	$(BIN)/python -m bench.levers --work $${WORK:-/tmp/ocrtrain-levers}

bench: setup bench-deps
	$(BIN)/python -m bench.synth_speed --count 2000
	$(BIN)/python -m bench.speed --lines 400 --steps 8
	$(BIN)/python -m bench.time_to_quality

clean-venv:
	rm -rf $(VENV)
