# Two entry points for a fresh machine with Python 3.11+:
#   make demo   initialise a data directory, issue the sample licenses, serve
#   make test   run the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA ?= var/demo
PORT ?= 8000
STAMP := $(VENV)/.installed

.PHONY: demo test bench install clean-demo

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test,pkcs11]"
	touch $(STAMP)

# The QR codes, certificates and printed URLs all use this address.
demo: export ELICENSE_PUBLIC_URL = http://127.0.0.1:$(PORT)
demo: $(STAMP)
	$(BIN)/elicense init --data-dir $(DATA)
	@# issue exits 1 when it rejected lines; the demo goes on to serve the rest.
	$(BIN)/elicense issue --data-dir $(DATA) examples/licenses-sample.jsonl --out $(DATA)/out \
		|| echo "（部分记录被拒绝，原因见上方；其余证照已签发）"
	$(BIN)/elicense serve --data-dir $(DATA) --port $(PORT)

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	@command -v wrk >/dev/null || { echo "make bench needs wrk (Debian: apt-get install wrk)"; exit 1; }
	$(BIN)/python -m benchmarks.run

clean-demo:
	rm -rf $(DATA)
