#!/usr/bin/env bash
# Start LocalStack community on the host (no Docker), bound to 127.0.0.1, with its state under .localstack/,
# Lambda run by the local-process executor and DynamoDB served by moto. Idempotent: does nothing if running.
#
# Env: LOCALSTACK_VENV, LOCALSTACK_STATE_DIR, LOCALSTACK_LISTEN_HOST, LOCALSTACK_PORT (see env.sh)
#      LOCAL_LAMBDA_PYTHON    Python that runs function code (default: <repo>/.venv-lambda/bin/python, the Python
#                             3.12 + boto3 venv `make localstack-up` and `make deploy-local` create, else Python
#                             3.12 from PATH or pyenv). A LocalStack already running functions under another
#                             interpreter is reported with the fix, not reused.
#      LOCALSTACK_START_TIMEOUT seconds to wait for health (default 60)
#      any LocalStack setting (LAMBDA_KEEPALIVE_MS, LS_LOG, ...) is passed through
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

if [[ -z "${LOCAL_LAMBDA_PYTHON:-}" ]]; then
    if [[ -x "$repo/.venv-lambda/bin/python" ]]; then
        LOCAL_LAMBDA_PYTHON="$repo/.venv-lambda/bin/python"
    elif python3.12 -c '' 2>/dev/null; then
        LOCAL_LAMBDA_PYTHON="$(command -v python3.12)"
    elif command -v pyenv >/dev/null && compgen -G "$(pyenv root)/versions/3.12*/bin/python3.12" >/dev/null; then
        LOCAL_LAMBDA_PYTHON="$(compgen -G "$(pyenv root)/versions/3.12*/bin/python3.12" | tail -1)"
    else
        echo "error: no Python for Lambda functions; set LOCAL_LAMBDA_PYTHON (make localstack-up creates .venv-lambda)" >&2
        exit 1
    fi
fi
version="$("$LOCAL_LAMBDA_PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || true)"
if [[ -z "$version" ]]; then
    echo "error: LOCAL_LAMBDA_PYTHON=$LOCAL_LAMBDA_PYTHON does not run; unset it to use .venv-lambda" >&2
    exit 1
elif [[ "$version" != "3.12" ]]; then
    echo "warning: functions will run under Python $version ($LOCAL_LAMBDA_PYTHON), not 3.12 as on AWS: compiled" \
        "packages built for the python3.12 runtime will not import. Unset LOCAL_LAMBDA_PYTHON to use .venv-lambda." >&2
fi

if pid="$(localstack_pid)"; then
    if localstack_healthy; then
        running="$(cat "$LOCALSTACK_LAMBDA_PYTHON_FILE" 2>/dev/null || true)"
        if [[ "$running" != "$LOCAL_LAMBDA_PYTHON" ]]; then
            echo "error: LocalStack (pid $pid) at $LOCALSTACK_URL runs functions under ${running:-an unrecorded interpreter}," \
                "not $LOCAL_LAMBDA_PYTHON; nothing was deployed into it. Restart it with the interpreter wanted:" >&2
            echo "  make localstack-down && make localstack-up     (or: make localstack-down && make deploy-local)" >&2
            exit 1
        fi
        echo "LocalStack already running (pid $pid) at $LOCALSTACK_URL, functions under $LOCAL_LAMBDA_PYTHON"
        exit 0
    fi
fi

[[ -x "$LOCALSTACK_VENV/bin/python" ]] || "$repo/infra/localstack/venv.sh" "$LOCALSTACK_VENV"

# State is in memory; what an earlier run unpacked (function code, layers, sandboxes) is garbage now.
rm -rf "$LOCALSTACK_STATE_DIR/tmp"
mkdir -p "$LOCALSTACK_STATE_DIR/tmp" "$LOCALSTACK_STATE_DIR/filesystem"
echo "Starting LocalStack at $LOCALSTACK_URL (functions run by $LOCAL_LAMBDA_PYTHON)"
started_ns=$(date +%s%N)
# hypercorn, not the default twisted server: twisted binds 0.0.0.0 whatever GATEWAY_LISTEN says.
# setsid: LocalStack leads its own session, so it outlives this shell and down.sh can find what it started.
TMPDIR="$LOCALSTACK_STATE_DIR/tmp" \
FILESYSTEM_ROOT="$LOCALSTACK_STATE_DIR/filesystem" \
GATEWAY_LISTEN="$LOCALSTACK_LISTEN_HOST:$LOCALSTACK_PORT" \
GATEWAY_SERVER=hypercorn \
DNS_ADDRESS=0 \
SKIP_SSL_CERT_DOWNLOAD=1 \
DISABLE_EVENTS=1 \
LAMBDA_RUNTIME_EXECUTOR=local-process \
PROVIDER_OVERRIDE_DYNAMODB=moto_server \
PROVIDER_OVERRIDE_FIREHOSE=aws_prefixes \
PROVIDER_OVERRIDE_CLOUDWATCH=metric_math_actions \
LOCAL_LAMBDA_PYTHON="$LOCAL_LAMBDA_PYTHON" \
    setsid "$LOCALSTACK_VENV/bin/python" -m localstack.runtime.main \
    </dev/null >"$LOCALSTACK_LOG" 2>&1 &
echo $! >"$LOCALSTACK_PIDFILE"
echo "$LOCAL_LAMBDA_PYTHON" >"$LOCALSTACK_LAMBDA_PYTHON_FILE"

deadline=$(( $(date +%s) + ${LOCALSTACK_START_TIMEOUT:-60} ))
until localstack_healthy; do
    if ! localstack_pid >/dev/null; then
        echo "error: LocalStack exited during startup; last lines of $LOCALSTACK_LOG:" >&2
        tail -n 30 "$LOCALSTACK_LOG" >&2
        rm -f "$LOCALSTACK_PIDFILE"
        exit 1
    fi
    if (( $(date +%s) > deadline )); then
        echo "error: LocalStack not healthy after ${LOCALSTACK_START_TIMEOUT:-60}s; see $LOCALSTACK_LOG" >&2
        "$repo/infra/localstack/down.sh" >&2 || true
        exit 1
    fi
    sleep 0.2
done
echo "LocalStack healthy (pid $(cat "$LOCALSTACK_PIDFILE")) in $(( ($(date +%s%N) - started_ns) / 1000000 )) ms"
