# LocalStack community on the host, without Docker (see infra/localstack/ and infra/lambda_executor/).
# Included by the main Makefile; every variable can be overridden there or on the command line.
#
#   make localstack-venv    create .venv-localstack (Python 3.13, localstack-core pinned, our plugins)
#   make localstack-up      start on 127.0.0.1:4566, state in .localstack/, pid in .localstack/localstack.pid
#   make localstack-down    stop it by PID with everything it started
#   make localstack-status  running? healthy?

LOCALSTACK_MK_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
LOCALSTACK_SCRIPTS ?= $(LOCALSTACK_MK_DIR)/localstack
LOCALSTACK_VENV ?= $(abspath $(LOCALSTACK_MK_DIR)/..)/.venv-localstack
LOCALSTACK_STATE_DIR ?= $(abspath $(LOCALSTACK_MK_DIR)/..)/.localstack
LOCALSTACK_PORT ?= 4566
# Python that runs Lambda function code; empty: the project's .venv if present, else Python 3.12.
LOCAL_LAMBDA_PYTHON ?=

LOCALSTACK_ENV = LOCALSTACK_VENV="$(LOCALSTACK_VENV)" LOCALSTACK_STATE_DIR="$(LOCALSTACK_STATE_DIR)" \
	LOCALSTACK_PORT="$(LOCALSTACK_PORT)" LOCAL_LAMBDA_PYTHON="$(LOCAL_LAMBDA_PYTHON)"

.PHONY: localstack-venv localstack-up localstack-down localstack-status

localstack-venv:
	@$(LOCALSTACK_ENV) bash $(LOCALSTACK_SCRIPTS)/venv.sh "$(LOCALSTACK_VENV)"

localstack-up: localstack-venv
	@$(LOCALSTACK_ENV) bash $(LOCALSTACK_SCRIPTS)/up.sh

localstack-down:
	@$(LOCALSTACK_ENV) bash $(LOCALSTACK_SCRIPTS)/down.sh

localstack-status:
	@$(LOCALSTACK_ENV) bash $(LOCALSTACK_SCRIPTS)/status.sh
