# mcpgate — every target bootstraps its own .venv (only python3, make and the registries are needed).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_DIR := tests/e2e/js
NODE_STAMP := $(NODE_DIR)/node_modules/.installed
# Defined before any rule names it: make expands prerequisites as it reads them.
SYSDEPS := $(VENV)/.sysdeps

.PHONY: demo test test-fast lint bench bench-smoke fuzz soak harden clean node sysdeps

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	# OPA's real engine for the OPA-backend tests. The wheel declares Python >= 3.14 but works on 3.11,
	# so it cannot be a normal dependency; pinned for reproducible policy decisions.
	$(BIN)/python -m pip install -q --ignore-requires-python opa-golib-python-bindings==0.4.4
	@touch $(STAMP)

$(NODE_STAMP): $(NODE_DIR)/package.json
	cd $(NODE_DIR) && npm install --no-audit --no-fund --loglevel=error
	@touch $(NODE_STAMP)

node: $(NODE_STAMP)

demo: $(STAMP)
	$(BIN)/python -m examples.demo

lint: $(STAMP)
	$(BIN)/ruff check mcpgate tests examples bench
	$(BIN)/mypy
	$(BIN)/lint-imports

test: $(STAMP) $(NODE_STAMP) $(SYSDEPS) lint
	$(BIN)/python -m pytest -n 2 --dist loadgroup

test-fast: $(STAMP)
	$(BIN)/python -m pytest -x -m "not e2e"

# System tools for the benchmark (nginx, wrk, gcc for bench/oload.c) and the dashboard's browser tests
# (chromium, chromium-driver), installed only when missing.
# policy-rc.d keeps apt from starting a system nginx service: the bench runs its own nginx.
$(SYSDEPS):
	@missing=""; \
	command -v nginx >/dev/null 2>&1 || test -x /usr/sbin/nginx || missing="$$missing nginx-light"; \
	command -v wrk >/dev/null 2>&1 || missing="$$missing wrk"; \
	command -v gcc >/dev/null 2>&1 || missing="$$missing gcc libc6-dev"; \
	command -v taskset >/dev/null 2>&1 && command -v chrt >/dev/null 2>&1 || missing="$$missing util-linux"; \
	command -v chromium >/dev/null 2>&1 && test -x /usr/bin/chromedriver || missing="$$missing chromium chromium-driver"; \
	if [ -n "$$missing" ]; then \
	  prc=/usr/sbin/policy-rc.d; made=""; \
	  if [ ! -e $$prc ]; then printf '#!/bin/sh\nexit 101\n' > $$prc && chmod +x $$prc && made=1; fi; \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	  rc=$$?; if [ -n "$$made" ]; then rm -f $$prc; fi; test $$rc -eq 0 || exit $$rc; \
	fi
	@mkdir -p $(VENV) && touch $@

sysdeps: $(SYSDEPS)

bench: $(STAMP) $(SYSDEPS)
	$(BIN)/python -m bench.run --update-doc

bench-smoke: $(STAMP) $(SYSDEPS)
	$(BIN)/python -m bench.run --smoke

clean:
	rm -rf $(VENV) $(NODE_DIR)/node_modules .mypy_cache .pytest_cache .ruff_cache

# Coverage-guided fuzzing (atheris) of the parsers, FUZZ_SECONDS per target; findings land in fuzz/findings/.
FUZZ_SECONDS ?= 60
fuzz: $(STAMP)
	$(BIN)/python -m fuzz.run --seconds $(FUZZ_SECONDS)

# Load L1-L3 against a real gateway, bounded (about 4 min; SOAK_SECONDS=1800 for the 30-min soak of
# perf-reliability L1): writes tests/hardening/results/soak.json and the load section of docs/reliability.md.
soak: $(STAMP) $(SYSDEPS)
	$(BIN)/python -m tests.hardening.soak --update-doc

# Bad-input corpus, differential oracle, property tests and faults; writes docs/reliability.md.
harden: $(STAMP)
	@rc=0; $(BIN)/python -m pytest tests/hardening -n 2 -q -p no:cacheprovider \
	  --junitxml=$(VENV)/harden-junit.xml || rc=$$?; \
	$(BIN)/python -m tests.hardening.report $(VENV)/harden-junit.xml docs/reliability.md >/dev/null || rc=1; \
	echo "wrote docs/reliability.md"; exit $$rc
