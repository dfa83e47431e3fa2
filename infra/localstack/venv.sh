#!/usr/bin/env bash
# Create LocalStack's own virtualenv (Python 3.13; LocalStack does not run on 3.11/3.12) and install
# localstack-core with its dependencies resolved as of its release (newer cbor2, pyOpenSSL, twisted break it),
# plus this project's local-process Lambda executor and the DynamoDB-to-moto bridge.
#
# Usage: infra/localstack/venv.sh [VENV_DIR]      (default: <repo>/.venv-localstack)
# Env:   LOCALSTACK_PYTHON       interpreter to build the venv with (default: python3.13, found via pyenv too)
#        LOCALSTACK_VERSION      default 2026.3.0
#        LOCALSTACK_EXCLUDE_NEWER default 2026-03-25
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${1:-${LOCALSTACK_VENV:-$repo/.venv-localstack}}"
version="${LOCALSTACK_VERSION:-2026.3.0}"
exclude_newer="${LOCALSTACK_EXCLUDE_NEWER:-2026-03-25}"
executor_pkg="$repo/infra/lambda_executor"

find_python313() {
    if [[ -n "${LOCALSTACK_PYTHON:-}" ]]; then echo "$LOCALSTACK_PYTHON"; return; fi
    # `python3.13` may be a pyenv shim that refuses when 3.13 is not the selected version.
    if python3.13 -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null; then
        command -v python3.13; return
    fi
    if command -v pyenv >/dev/null 2>&1; then
        local root; root="$(pyenv root)"
        local candidate
        for candidate in "$root"/versions/3.13*/bin/python3.13; do
            [[ -x "$candidate" ]] && { echo "$candidate"; return; }
        done
    fi
    echo "error: Python 3.13 not found (set LOCALSTACK_PYTHON)" >&2
    exit 1
}

stamp="$venv/.churnguard-installed"
want="localstack-core==$version exclude-newer=$exclude_newer executor=$(cat "$executor_pkg/pyproject.toml" | cksum)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x "$venv/bin/python" ]]; then
    echo "LocalStack venv up to date: $venv"
    exit 0
fi

if [[ ! -x "$venv/bin/python" ]]; then
    py="$(find_python313)"
    echo "Creating $venv with $py"
    "$py" -m venv "$venv"
fi
# uv resolves with --exclude-newer; it lives inside this venv so nothing is installed globally.
if [[ ! -x "$venv/bin/uv" ]]; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check uv
fi
VIRTUAL_ENV="$venv" "$venv/bin/uv" pip install --python "$venv/bin/python" \
    --exclude-newer "$exclude_newer" \
    "localstack-core[runtime]==$version" flask flask-cors \
    -e "$executor_pkg"
echo "$want" > "$stamp"
echo "LocalStack venv ready: $venv"
