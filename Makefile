# dealab — every target bootstraps .venv on first use. `make help` lists them.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
DEALAB := $(VENV)/bin/dealab
PY := $(VENV)/bin/python

.DEFAULT_GOAL := help
.PHONY: help up down status env shell pyspark reset labs coverage test conformance bench grade-all clean-venv

help:
	@echo "make lab-N      start lab N: local AWS up, your data generated, the exercise printed"
	@echo "make run-N      run your starter code for lab N against the local AWS"
	@echo "make grade-N    check your work on lab N (grade-all for every lab)"
	@echo "make hint-N     one more level of help for lab N"
	@echo "make solve-N    run the reference solution of lab N"
	@echo "make reset-N    delete lab N's resources and data"
	@echo "make shell      a shell whose AWS clients talk to the local AWS (prompt: (dealab))"
	@echo "make pyspark    the PySpark shell, its s3:// paths the local AWS's S3 (dealab spark-submit for scripts)"
	@echo "make up | down | status | env | reset | labs | coverage | test | bench"
	@echo "make conformance BACKEND=ministack   every lab's solution graded with another backend behind the gateway (or embedded)"

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	# The only PyPI source of the hadoop-aws + AWS SDK jars Spark needs for s3://; its metadata pins an old
	# pyspark, so it goes in without dependencies (see docs/glue.md).
	$(PY) -m pip install --quiet --no-deps sagemaker-pyspark==1.4.5
	@touch $(STAMP)

lab-%: $(STAMP)
	@$(DEALAB) lab start $*
run-%: $(STAMP)
	@$(DEALAB) lab run $*
grade-%: $(STAMP)
	@$(DEALAB) grade $*
hint-%: $(STAMP)
	@$(DEALAB) lab hint $*
solve-%: $(STAMP)
	@$(DEALAB) lab solve $*
reset-%: $(STAMP)
	@$(DEALAB) lab reset $*

up: $(STAMP)
	@$(DEALAB) up
down: $(STAMP)
	@$(DEALAB) down
status: $(STAMP)
	@$(DEALAB) status
env: $(STAMP)
	@$(DEALAB) env
shell: $(STAMP)
	@$(DEALAB) shell
pyspark: $(STAMP)
	@$(DEALAB) pyspark
reset: $(STAMP)
	@$(DEALAB) reset --yes
labs: $(STAMP)
	@$(DEALAB) labs
coverage: $(STAMP)
	@$(DEALAB) labs --coverage
grade-all: $(STAMP)
	@$(DEALAB) grade all

# After the unit and lab tests, every lab once more on ministack (a few minutes): the README's promise that any
# AWS-compatible backend works behind the gateway, measured.
test: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadfile --durations=25
	@$(MAKE) --no-print-directory conformance BACKEND=ministack

# The backend is installed from the package index into .conformance/BACKEND-venv (its own pins), started on a
# free loopback port per lab, and stopped with the stack whatever happens; see dealab/conformance.py.
BACKEND ?= ministack
conformance: $(STAMP)
	@$(PY) -m dealab.conformance $(BACKEND)

bench: $(STAMP)
	@for script in bench/*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

clean-venv:
	rm -rf $(VENV)
