#!/usr/bin/env bash
# Start LocalStack community on the host (no Docker), bound to 127.0.0.1, with its state under .localstack/,
# Lambda run by the local-process executor and DynamoDB served by moto. Idempotent: does nothing if running.
#
# Env: LOCALSTACK_VENV, LOCALSTACK_STATE_DIR, LOCALSTACK_LISTEN_HOST, LOCALSTACK_PORT (see env.sh)
#      LOCAL_LAMBDA_PYTHON    Python that runs function code (default: <repo>/.venv/bin/python if present,
#                             else Python 3.12 from PATH or pyenv)
#      LOCALSTACK_START_TIMEOUT seconds to wait for health (default 60)
#      any LocalStack setting (LAMBDA_KEEPALIVE_MS, LS_LOG, ...) is passed through
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

if pid="$(localstack_pid)"; then
    if localstack_healthy; then
        echo "LocalStack already running (pid $pid) at $LOCALSTACK_URL"
        exit 0
    fi
fi

[[ -x "$LOCALSTACK_VENV/bin/python" ]] || "$repo/infra/localstack/venv.sh" "$LOCALSTACK_VENV"

if [[ -z "${LOCAL_LAMBDA_PYTHON:-}" ]]; then
    if [[ -x "$repo/.venv/bin/python" ]]; then
        LOCAL_LAMBDA_PYTHON="$repo/.venv/bin/python"
    elif python3.12 -c '' 2>/dev/null; then
        LOCAL_LAMBDA_PYTHON="$(command -v python3.12)"
    elif command -v pyenv >/dev/null && compgen -G "$(pyenv root)/versions/3.12*/bin/python3.12" >/dev/null; then
        LOCAL_LAMBDA_PYTHON="$(compgen -G "$(pyenv root)/versions/3.12*/bin/python3.12" | tail -1)"
    else
        echo "error: no Python for Lambda functions; set LOCAL_LAMBDA_PYTHON" >&2
        exit 1
    fi
fi

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
LOCAL_LAMBDA_PYTHON="$LOCAL_LAMBDA_PYTHON" \
    setsid "$LOCALSTACK_VENV/bin/python" -m localstack.runtime.main \
    </dev/null >"$LOCALSTACK_LOG" 2>&1 &
echo $! >"$LOCALSTACK_PIDFILE"

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
