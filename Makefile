# The two commands of the README: `make demo` (main job on the shipped example) and `make test`.
# Each installs what it needs into .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo browser test test-fast bench lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	$(BIN)/python -m compileall -q sim   # an editable install leaves the package's bytecode to the first run
	touch $(STAMP)

install: $(STAMP)

# The main job on the shipped example: the sweep of the points program and its report (the committed
# example reports/demo/report.html), then one run of the program against its baseline and its report, and a
# program for a retailer that starts from its existing customers (scenarios/retailer_existing_base.yaml).
demo: $(STAMP)
	$(BIN)/loyalty-sim sweep scenarios/sweep_points.yaml --out reports/demo/sweep
	$(BIN)/loyalty-sim report reports/demo/sweep -o reports/demo/report.html
	$(BIN)/loyalty-sim run scenarios/points_program.yaml --out reports/demo/run
	$(BIN)/loyalty-sim report reports/demo/run -o reports/demo/run_report.html
	$(BIN)/loyalty-sim run scenarios/retailer_existing_base.yaml --out reports/demo/existing_base
	$(BIN)/loyalty-sim report reports/demo/existing_base -o reports/demo/existing_base_report.html

# Headless Chromium for tests/test_report_browser.py, from Debian's packages where missing (CI runs as
# root on Debian). Elsewhere it says what to install, and the browser test is skipped.
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	  else \
	    echo "browser test will be skipped: install Debian's chromium and chromium-driver (as root)"; \
	  fi; \
	fi

test: $(STAMP) browser lint
	$(BIN)/python -m pytest

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check sim tests bench scripts

bench: $(STAMP)
	$(BIN)/python bench/bench_engine.py --repeat 3

clean:
	rm -rf $(VENV) results reports/demo .pytest_cache
