# Shared settings for up.sh, down.sh and status.sh (sourced, not run). Every value can be overridden from the
# environment (the make targets in infra/localstack.mk pass theirs).
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
LOCALSTACK_VENV="${LOCALSTACK_VENV:-$repo/.venv-localstack}"
LOCALSTACK_STATE_DIR="${LOCALSTACK_STATE_DIR:-$repo/.localstack}"
LOCALSTACK_LISTEN_HOST="${LOCALSTACK_LISTEN_HOST:-127.0.0.1}"
LOCALSTACK_PORT="${LOCALSTACK_PORT:-4566}"
LOCALSTACK_PIDFILE="$LOCALSTACK_STATE_DIR/localstack.pid"
LOCALSTACK_LOG="$LOCALSTACK_STATE_DIR/localstack.log"
LOCALSTACK_LAMBDA_PYTHON_FILE="$LOCALSTACK_STATE_DIR/lambda-python"  # the interpreter its functions run under
LOCALSTACK_URL="http://$LOCALSTACK_LISTEN_HOST:$LOCALSTACK_PORT"

localstack_pid() {
    # The PID from the pidfile, if that process is still alive.
    local pid
    [[ -f "$LOCALSTACK_PIDFILE" ]] || return 1
    pid="$(cat "$LOCALSTACK_PIDFILE")"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

localstack_healthy() {
    curl -sf --max-time 2 "$LOCALSTACK_URL/_localstack/health" >/dev/null 2>&1
}
