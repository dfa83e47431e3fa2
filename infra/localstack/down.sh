#!/usr/bin/env bash
# Stop LocalStack by the PID in .localstack/localstack.pid, with everything it started: the moto server behind
# DynamoDB and the Lambda runtimes (each leads its own process group, so a group kill would miss them).
# Idempotent: does nothing if LocalStack is not running.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

if ! pid="$(localstack_pid)"; then
    rm -f "$LOCALSTACK_PIDFILE"
    echo "LocalStack not running"
    exit 0
fi

descendants() {
    # all processes below $1, found through /proc's parent links
    local parent=$1 child
    for child in $(ps -o pid= --ppid "$parent" 2>/dev/null); do
        echo "$child"
        descendants "$child"
    done
}

alive() {
    # each distinct PID that still runs; a zombie has exited (PID 1 reaps orphans in its own time)
    local p out=()
    for p in $(printf '%s\n' "$@" | sort -un); do
        kill -0 "$p" 2>/dev/null || continue
        [[ "$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | cut -d' ' -f1)" == Z ]] && continue
        out+=("$p")
    done
    echo "${out[@]:-}"
}

# Collect the tree before signalling: once LocalStack exits, its children are re-parented and lost to view.
tree="$(descendants "$pid" | tr '\n' ' ')"
echo "Stopping LocalStack (pid $pid; children: ${tree:-none})"
kill -TERM "$pid" 2>/dev/null || true
for _ in $(seq 1 100); do       # LocalStack stops its services and runtimes itself: give it 10 s
    [[ -n "$(alive "$pid")" ]] || break
    tree="$tree $(descendants "$pid" | tr '\n' ' ')"
    sleep 0.1
done

left="$(alive "$pid" $tree)"
if [[ -n "$left" ]]; then
    echo "Terminating what is left: $left"
    kill -TERM $left 2>/dev/null || true
    sleep 2
    left="$(alive $left)"
    if [[ -n "$left" ]]; then
        echo "Killing: $left"
        kill -KILL $left 2>/dev/null || true
        sleep 0.5
    fi
fi
left="$(alive "$pid" $tree)"
if [[ -n "$left" ]]; then
    echo "error: processes still running: $left" >&2
    exit 1
fi
rm -f "$LOCALSTACK_PIDFILE" "$LOCALSTACK_LAMBDA_PYTHON_FILE"
echo "LocalStack stopped"
