# Two commands for a fresh machine: `make demo` and `make test` (each sets itself up).
SHELL := /bin/bash
VENV := .venv
# TFF 0.87 supports Python 3.9-3.11: take the first interpreter in that range.
PYTHON ?= $(shell for p in python3.11 python3.10 python3.9 python3; do \
	command -v $$p >/dev/null && $$p -c 'import sys; sys.exit(not (3, 9) <= sys.version_info[:2] <= (3, 11))' 2>/dev/null && { echo $$p; break; }; done)
RUN := TF_CPP_MIN_LOG_LEVEL=2 PYTHONUNBUFFERED=1 $(VENV)/bin/python

.PHONY: demo test bench docs-figures lock clean-venv

$(VENV)/.installed: requirements.lock setup.py
	@test -n "$(PYTHON)" || { echo "Python 3.9-3.11 is required (TensorFlow Federated 0.87 supports no other); none found on PATH." >&2; exit 1; }
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade 'pip>=23' 'setuptools>=65'
	$(VENV)/bin/python -m pip install --quiet --no-deps -r requirements.lock
	$(VENV)/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

# The optional Ray sweep backend: only the tests need it (`make demo` stays without it).
$(VENV)/.installed-ray: requirements-ray.lock | $(VENV)/.installed
	$(VENV)/bin/python -m pip install --quiet --no-deps -r requirements-ray.lock
	touch $@

demo: $(VENV)/.installed
	$(RUN) -m launch.run_experiment --dataset=digits

# Two test processes (pytest-xdist): the suite spends most of its time in one core's TF work.
test: $(VENV)/.installed $(VENV)/.installed-ray
	$(RUN) -m pytest -q -n 2 tests

bench: $(VENV)/.installed
	$(RUN) -m bench.round_time

# The README's sweep/compare table and figure (docs/figures/digits_sweep*), from its commands.
docs-figures: $(VENV)/.installed
	$(RUN) -m bench.docs_figures

lock: $(VENV)/.installed
	$(VENV)/bin/python -m pip freeze --exclude-editable \
		$$(grep -v '^#' requirements-ray.lock | sed 's/==.*//; s/^/--exclude /') | sort -f

clean-venv:
	rm -rf $(VENV)
