"""Would every built function load on the AWS Lambda python3.12 runtime, for both architectures?

The audit (infra/packaging/runtime_audit.py) reads the ELF NEEDED entries of every shared object in every built
function and layer and resolves them as the runtime would, against the list of libraries the runtime provides
(infra/packaging/lambda-runtime-libraries.txt, sources named there), never against this host; and it runs
`pip check` of each function with its layers and the runtime's boto3/botocore.

It audits real builds: build/ is not committed, so the first run builds both architectures with
`infra/packaging/package.py build --arch all --no-record --if-changed` (a few minutes on a fresh clone; later runs
reuse a build whose inputs have not changed). The checks are also shown to fail: without the ML layer's libgomp,
on an object of the wrong architecture, and on python-dateutil 4 beside the runtime's botocore.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGING = ROOT / "infra" / "packaging"


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


packaging = _load("churnguard_packaging", PACKAGING / "package.py")
audit = _load("churnguard_runtime_audit", PACKAGING / "runtime_audit.py")
ARCHS = packaging.ARCHITECTURES


@pytest.fixture(scope="module")
def builds() -> dict[str, Path]:
    """Both architectures built from the current inputs (built here when missing or stale)."""
    if packaging.python312() is None:
        pytest.fail("the audit needs CPython 3.12 (the Lambda runtime's): put python3.12 on PATH or set PYTHON312")
    subprocess.run(
        [sys.executable, str(PACKAGING / "package.py"), "build", "--arch", "all", "--no-record", "--if-changed"],
        check=True,
    )
    return {arch: packaging.out_dir(arch) for arch in ARCHS}


@pytest.fixture(scope="module")
def runtime(builds) -> tuple[Path, Path, str]:
    """The runtime's boto3 (installed once), a folder with pip alone, and CPython 3.12."""
    return packaging.runtime_dir(), audit.pip_only(packaging.OUT.parent / "pip-only"), packaging.python312()


def test_the_runtime_library_list_names_its_source_and_omits_libgomp():
    text = audit.RUNTIME_LIBRARIES.read_text()
    assert "aws-lambda-base-images" in text and "amazon-linux-2023 issue #585" in text
    for arch in ARCHS:
        provided = audit.runtime_libraries(arch)
        assert {"libc.so.6", "libm.so.6", "libstdc++.so.6", "libgcc_s.so.1"} <= provided
        assert "libgomp.so.1" not in provided
    assert "ld-linux-aarch64.so.1" in audit.runtime_libraries("arm64")
    assert "ld-linux-aarch64.so.1" not in audit.runtime_libraries("x86_64")


@pytest.mark.parametrize("arch", ARCHS)
def test_every_needed_library_resolves_on_the_runtime(builds, arch):
    packages = audit.packages(builds[arch])
    assert {p.name for p in packages} == set(packaging.units(packaging.load_template())[1])
    problems = [pr for p in packages for pr in audit.library_problems(p, arch)]
    assert problems == []


@pytest.mark.parametrize("arch", ARCHS)
def test_the_ml_layer_brings_a_libgomp_for_lib_lightgbm(builds, arch):
    layer = builds[arch] / "layers" / "MlLayer"
    gomp = audit.read_shared_object(layer / "lib" / "libgomp.so.1")
    lightgbm = audit.read_shared_object(layer / "python" / "lightgbm" / "lib" / "lib_lightgbm.so")
    assert gomp is not None and gomp.machine == audit.ELF_MACHINE[arch]
    assert "libgomp.so.1" in lightgbm.needed


@pytest.mark.parametrize("arch", ARCHS)
def test_python_dependencies_agree_with_the_runtime_boto3(builds, runtime, arch):
    problems = [pr for p in audit.packages(builds[arch]) for pr in audit.dependency_problems(p, *runtime, arch)]
    assert problems == []


def test_the_audit_fails_without_the_bundled_libgomp(builds, tmp_path):
    """lib_lightgbm.so alone in a layer, as before this layer carried libgomp: named as unresolved, although this
    host has a libgomp.so.1 of its own (the host does not count)."""
    built = builds["x86_64"] / "layers" / "MlLayer"
    layer = tmp_path / "MlLayer"
    (layer / "python" / "lightgbm" / "lib").mkdir(parents=True)
    shutil.copy(built / "python" / "lightgbm" / "lib" / "lib_lightgbm.so", layer / "python" / "lightgbm" / "lib")
    function = tmp_path / "Function"
    function.mkdir()
    package = audit.Package("Function", function, [layer])
    problems = audit.library_problems(package, "x86_64")
    assert len(problems) == 1 and "lib_lightgbm.so needs libgomp.so.1" in problems[0]
    (layer / "lib").mkdir()
    shutil.copy(built / "lib" / "libgomp.so.1", layer / "lib")
    assert audit.library_problems(package, "x86_64") == []


def test_the_audit_names_an_object_built_for_the_other_architecture(builds, tmp_path):
    function = tmp_path / "Function"
    function.mkdir()
    shutil.copy(builds["arm64"] / "layers" / "MlLayer" / "lib" / "libgomp.so.1", function)
    problems = audit.library_problems(audit.Package("Function", function), "x86_64")
    assert problems == ["Function: Function/libgomp.so.1 is built for EM_AARCH64, not x86_64"]


def test_pip_check_catches_python_dateutil_4_beside_the_runtime_botocore(runtime, tmp_path):
    """What the train and batch packages carried before they pinned python-dateutil<3."""
    function = tmp_path / "Function"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps", "--target"]
        + [str(function), "python-dateutil==4.0.0"],
        check=True,
    )
    problems = audit.dependency_problems(audit.Package("Function", function), *runtime)
    assert any("botocore" in p and "python-dateutil" in p and "4.0.0" in p for p in problems), problems
