"""The local executor hides this host's extra shared libraries from function processes, as AWS has none of them.

Without LocalStack: the executor's sandbox (local_lambda_executor/sandbox.py) runs the built ML layer's
lib_lightgbm.so as a function process would load it. With the layer's bundled libgomp it loads; without it, it
fails with the error AWS gives (`libgomp.so.1: cannot open shared object file`), although this host has a
libgomp.so.1 of its own, which an unsandboxed process finds.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "infra" / "lambda_executor" / "src"))

from local_lambda_executor import sandbox  # noqa: E402

LOAD = "import ctypes, sys; ctypes.CDLL(sys.argv[1]); print('loaded')"


@pytest.fixture(scope="module")
def ml_layer() -> Path:
    """The ML layer as built for this host's architecture (built here when missing or stale)."""
    subprocess.run(
        [sys.executable, str(REPO / "infra/packaging/package.py"), "build", "--no-record", "--if-changed"],
        check=True,
    )
    return REPO / "build" / "lambda" / "layers" / "MlLayer"


def run(layer: Path, hidden: bool, tmp_path: Path) -> subprocess.CompletedProcess:
    task = tmp_path / "task"
    task.mkdir(exist_ok=True)
    argv = [sys.executable, "-c", LOAD, str(layer / "python" / "lightgbm" / "lib" / "lib_lightgbm.so")]
    env = {"PATH": "/usr/bin:/bin", "LD_LIBRARY_PATH": sandbox.library_path(task, [layer], hidden=hidden)}
    return subprocess.run(
        sandbox.command(argv, tmp_root=str(tmp_path)) if hidden else argv, env=env, capture_output=True, text=True
    )


def test_the_sandbox_is_available_here():
    assert sandbox.available() is None, "the executor could not hide host libraries on this machine"


def test_lib_lightgbm_loads_with_the_layers_libgomp(ml_layer, tmp_path):
    done = run(ml_layer, hidden=True, tmp_path=tmp_path)
    assert done.returncode == 0 and "loaded" in done.stdout, done.stderr


def test_without_the_bundled_libgomp_the_load_fails_as_on_aws(ml_layer, tmp_path):
    layer = tmp_path / "MlLayer"
    shutil.copytree(ml_layer / "python" / "lightgbm" / "lib", layer / "python" / "lightgbm" / "lib")
    (layer / "lib").mkdir()  # the layer's lib/ without libgomp.so.1
    assert Path("/usr/lib", sandbox.MULTIARCH, "libgomp.so.1").exists()  # the host has one...
    assert run(layer, hidden=False, tmp_path=tmp_path).returncode == 0  # ...which an unsandboxed process finds
    done = run(layer, hidden=True, tmp_path=tmp_path)
    assert done.returncode != 0
    assert "libgomp.so.1: cannot open shared object file" in done.stderr


def test_the_runtime_python_keeps_its_standard_library(tmp_path):
    """The interpreter's own modules still import (their libraries stand in for AWS's /var/lang)."""
    argv = [sys.executable, "-c", "import ssl, sqlite3, lzma, bz2, zlib, ctypes, uuid, json; print('ok')"]
    done = subprocess.run(sandbox.command(argv, tmp_root=str(tmp_path)), capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
