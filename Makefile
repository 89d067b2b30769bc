# Two commands do everything on a fresh machine:  make run  |  make test
VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed-$(shell cksum requirements.txt | cut -d' ' -f1)
# Stage commands in dvc.yaml call `python`: make it the project's interpreter.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
# pyworld builds from source and needs setuptools<81 in its build environment.
export PIP_CONSTRAINT := $(CURDIR)/build-constraints.txt

TEXT     ?= The quick brown fox jumps over the lazy dog.
ACOUSTIC ?=
VOCODER  ?=
OUT      ?= synth.wav
# stages at once in `make run` (0 = all cores; 1 = one at a time, like `dvc repro`)
JOBS     ?= 0

.PHONY: setup run test synth report bench lint mlflow-ui clean

setup: $(STAMP)
$(STAMP): requirements.txt build-constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet -r requirements.txt
	rm -f $(VENV)/.installed-* && touch $@

run: setup                       ## the whole DAG on the embedded corpus, stages side by side
	$(PY) -m tts.parallel_repro --jobs $(JOBS)

test: setup                      ## unit tests + one end-to-end tiny pipeline
	$(PY) -m pytest tests -q

synth: setup                     ## make synth TEXT="..." [ACOUSTIC=] [VOCODER=] [OUT=]
	$(PY) -m stages.synth --text "$(TEXT)" --acoustic "$(ACOUSTIC)" --vocoder "$(VOCODER)" --out "$(OUT)"

report: setup                    ## rebuild the evaluation report
	dvc repro evaluate

bench: setup                     ## speed benchmarks -> benchmarks/results/
	for b in benchmarks/[a-z]*.py; do n=$$(basename $$b .py); \
	  [ "$$n" = harness ] || $(PY) -m benchmarks.$$n || exit 1; done

lint: setup
	$(PY) -m compileall -q tts models stages tests benchmarks

mlflow-ui: setup                 ## browse runs at http://127.0.0.1:5000
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlflow.db \
	  --default-artifact-root $(CURDIR)/mlartifacts --host 127.0.0.1 --port 5000

clean:                           ## remove pipeline outputs (keeps the DVC cache)
	rm -rf data metrics plots reports/index.html reports/summary.md
