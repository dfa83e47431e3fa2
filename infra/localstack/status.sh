#!/usr/bin/env bash
# Say whether LocalStack is running and healthy, with the state of its services. Exit 1 if not running.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

if ! pid="$(localstack_pid)"; then
    echo "LocalStack not running"
    exit 1
fi
if localstack_healthy; then
    echo "LocalStack running (pid $pid) at $LOCALSTACK_URL"
    curl -sf --max-time 2 "$LOCALSTACK_URL/_localstack/health"
    echo
else
    echo "LocalStack process $pid is alive but not healthy at $LOCALSTACK_URL; see $LOCALSTACK_LOG"
    exit 1
fi
