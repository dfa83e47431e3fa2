# LocalStack community on the host, without Docker (see infra/localstack/ and infra/lambda_executor/).
# Included by the main Makefile; every variable can be overridden there or on the command line.
#
#   make localstack-venv    create .venv-localstack (Python 3.13, localstack-core pinned, our plugins)
#   make localstack-up      start on 127.0.0.1:4566, state in .localstack/, pid in .localstack/localstack.pid;
#                           functions run under LOCAL_LAMBDA_PYTHON (default .venv-lambda, Python 3.12 + boto3)
#   make localstack-down    stop it by PID with everything it started
#   make localstack-status  running? healthy?

LOCALSTACK_MK_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
LOCALSTACK_SCRIPTS ?= $(LOCALSTACK_MK_DIR)/localstack
LOCALSTACK_VENV ?= $(abspath $(LOCALSTACK_MK_DIR)/..)/.venv-localstack
LOCALSTACK_STATE_DIR ?= $(abspath $(LOCALSTACK_MK_DIR)/..)/.localstack
LOCALSTACK_PORT ?= 4566
# Python that runs Lambda function code: by default .venv-lambda, CPython 3.12 with boto3 only, what the AWS
# python3.12 runtime provides. localstack-up and deploy-local use the same one; a LocalStack already running
# functions under another interpreter is reported, not reused.
LAMBDA_VENV ?= $(abspath $(LOCALSTACK_MK_DIR)/..)/.venv-lambda
LOCAL_LAMBDA_PYTHON ?= $(LAMBDA_VENV)/bin/python
LAMBDA_PYTHON312 = $(shell python3.12 -c 'import sys; print(sys.executable)' 2>/dev/null || \
	ls -d $$(pyenv root 2>/dev/null)/versions/3.12*/bin/python3.12 2>/dev/null | tail -1)

LOCALSTACK_ENV = LOCALSTACK_VENV="$(LOCALSTACK_VENV)" LOCALSTACK_STATE_DIR="$(LOCALSTACK_STATE_DIR)" \
	LOCALSTACK_PORT="$(LOCALSTACK_PORT)" LOCAL_LAMBDA_PYTHON="$(LOCAL_LAMBDA_PYTHON)"

.PHONY: localstack-venv localstack-up localstack-down localstack-status

localstack-venv:
	@$(LOCALSTACK_ENV) bash $(LOCALSTACK_SCRIPTS)/venv.sh "$(LOCALSTACK_VENV)"

# The Lambda venv: CPython 3.12 and boto3, nothing else (made with the uv inside LocalStack's venv).
$(LAMBDA_VENV)/.installed: | localstack-venv
	@test -n "$(LAMBDA_PYTHON312)" || { echo "error: python3.12 not found (PATH or pyenv)" >&2; exit 1; }
	rm -rf $(LAMBDA_VENV)
	$(LOCALSTACK_VENV)/bin/uv venv -q -p "$(LAMBDA_PYTHON312)" $(LAMBDA_VENV)
	VIRTUAL_ENV=$(LAMBDA_VENV) $(LOCALSTACK_VENV)/bin/uv pip install -q boto3
	touch $@

localstack-up: localstack-venv $(if $(filter $(LAMBDA_VENV)/bin/python,$(LOCAL_LAMBDA_PYTHON)),$(LAMBDA_VENV)/.installed)
	@$(LOCALSTACK_ENV) bash $(LOCALSTACK_SCRIPTS)/up.sh

localstack-down:
	@$(LOCALSTACK_ENV) bash $(LOCALSTACK_SCRIPTS)/down.sh

localstack-status:
	@$(LOCALSTACK_ENV) bash $(LOCALSTACK_SCRIPTS)/status.sh
