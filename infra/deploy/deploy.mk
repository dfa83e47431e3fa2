# Deploy template.yaml into LocalStack on the host (no Docker) and run the end-to-end tier against it.
# Included by the main Makefile after infra/localstack.mk.
#
#   make deploy-local   sam build, deploy through CloudFormation into LocalStack (started if needed), seed a champion;
#                       outputs in .localstack/stack-outputs.json
#   make e2e            tests/e2e: starts its own LocalStack on a free port, deploys once, tests through API Gateway,
#                       Step Functions and EventBridge, stops it by PID (E2E_ENDPOINT=http://... reuses a deployed one)
#
# Function code runs under LOCAL_LAMBDA_PYTHON, by default .venv-lambda: Python 3.12 with boto3 only, what the AWS
# python3.12 runtime provides. Everything else must come from the function's zip and its layers, exactly as
# `sam build` laid them out, so the tests also prove the packaging. (Any interpreter can be given instead:
# make e2e LOCAL_LAMBDA_PYTHON=$PWD/.venv/bin/python runs the code under the dev venv, Python 3.11, where the
# cp312 wheels in the layers do not import.)

# LOCAL_LAMBDA_PYTHON and the .venv-lambda rule are in infra/localstack.mk: localstack-up uses the same interpreter.
DEPLOY_LAMBDA_PYTHON = $(LOCAL_LAMBDA_PYTHON)

.PHONY: deploy-local e2e

deploy-local: venv $(SAM_VENV)/.installed $(LAMBDA_VENV)/.installed
	@$(MAKE) --no-print-directory localstack-up LOCAL_LAMBDA_PYTHON="$(DEPLOY_LAMBDA_PYTHON)"
	$(BIN)/python infra/deploy/localstack_deploy.py --endpoint http://127.0.0.1:$(LOCALSTACK_PORT) \
		--outputs $(LOCALSTACK_STATE_DIR)/stack-outputs.json

e2e: venv $(SAM_VENV)/.installed $(LAMBDA_VENV)/.installed localstack-venv
	LOCAL_LAMBDA_PYTHON="$(DEPLOY_LAMBDA_PYTHON)" LOCALSTACK_VENV="$(LOCALSTACK_VENV)" $(PYTEST) tests/e2e -q --durations=5
