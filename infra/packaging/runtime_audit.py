"""Would the built functions load on the AWS Lambda python3.12 runtime, not only on this host?

Two checks of a build of infra/packaging/package.py (build/lambda, build/lambda-arm64), each function with its
layers as Lambda lays them out (function in /var/task, every layer merged into /opt):

1. Native libraries. Every ELF shared object must be built for the architecture, and each of its ``NEEDED``
   libraries must resolve as the runtime's dynamic loader would find it: through the object's own RPATH/RUNPATH
   (``$ORIGIN`` relative: auditwheel's ``<package>.libs`` folders), in the folders of the runtime's LD_LIBRARY_PATH
   that the package fills (/var/task, /var/task/lib, /opt/lib = the layers' lib/), or in the runtime itself
   (infra/packaging/lambda-runtime-libraries.txt). This host's libraries count for nothing.
2. Python dependencies. ``pip check`` of the function, its layers and the boto3/botocore the runtime brings, in
   import order (what the function ships shadows the runtime's copy), run by CPython 3.12 with no site-packages.
   Markers are evaluated for this host (Linux, x86_64), which is only a difference for platform_machine markers.
   The runtime's boto3 is stood in for by the newest on PyPI (package.runtime_dir): AWS updates the runtime's copy
   and publishes no pinned version; botocore's own requirements (python-dateutil>=2.1,<3, jmespath<2, urllib3<3
   on Python 3.10+) have not changed across its 1.3x releases, and they are what a package can conflict with.

    python infra/packaging/runtime_audit.py                 # both architectures, after `make package`

tests/unit/test_runtime_audit.py runs the same checks (and builds what is missing) as part of `make test`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile

HERE = Path(__file__).resolve().parent
RUNTIME_LIBRARIES = HERE / "lambda-runtime-libraries.txt"
ELF_MACHINE = {"x86_64": "EM_X86_64", "arm64": "EM_AARCH64"}
# Installed without their dependencies on purpose: a missing dependency of these is not a problem (a version
# conflict still is). lightgbm: only lib_lightgbm.so is used, through ctypes (layers/ml/requirements-nodeps.txt);
# the functions that import the lightgbm package (training) bring scipy and narwhals themselves.
WITHOUT_DEPENDENCIES = ("lightgbm",)


def runtime_libraries(arch: str, path: Path = RUNTIME_LIBRARIES) -> set[str]:
    """The sonames the python3.12 runtime provides on one architecture."""
    names = set()
    for line in path.read_text().splitlines():
        fields = line.split("#", 1)[0].split()
        if fields and (len(fields) == 1 or fields[1] == arch):
            names.add(fields[0])
    return names


@dataclass(frozen=True)
class SharedObject:
    path: Path
    machine: str
    needed: tuple[str, ...]
    search_path: tuple[str, ...]  # RPATH and RUNPATH entries, as written


def read_shared_object(path: Path) -> SharedObject | None:
    """The dynamic-linking facts of an ELF file; None if it is not ELF."""
    with open(path, "rb") as f:
        if f.read(4) != b"\x7fELF":
            return None
        f.seek(0)
        try:
            elf = ELFFile(f)
            needed: list[str] = []
            search: list[str] = []
            for section in elf.iter_sections():
                if not isinstance(section, DynamicSection):
                    continue
                for tag in section.iter_tags():
                    if tag.entry.d_tag == "DT_NEEDED":
                        needed.append(tag.needed)
                    elif tag.entry.d_tag == "DT_RPATH":
                        search += tag.rpath.split(":")
                    elif tag.entry.d_tag == "DT_RUNPATH":
                        search += tag.runpath.split(":")
            return SharedObject(path, elf["e_machine"], tuple(needed), tuple(s for s in search if s))
        except ELFError:
            return None


@dataclass
class Package:
    """A function as Lambda runs it: its folder (/var/task) and its layers' folders (merged into /opt)."""

    name: str
    function_dir: Path
    layer_dirs: list[Path] = field(default_factory=list)

    def roots(self) -> list[Path]:
        return [self.function_dir, *self.layer_dirs]

    def library_dirs(self) -> list[Path]:
        """The package's share of the runtime's LD_LIBRARY_PATH: /var/task, /var/task/lib, /opt/lib."""
        return [self.function_dir, self.function_dir / "lib", *(d / "lib" for d in self.layer_dirs)]

    def python_path(self) -> list[Path]:
        """sys.path as the runtime builds it: /var/task, then /opt/python (later layers win when merged)."""
        return [self.function_dir, *(d / "python" for d in reversed(self.layer_dirs))]


def shared_objects(root: Path) -> list[SharedObject]:
    found = []
    for path in sorted(root.rglob("*.so*")):
        if path.is_file() and not path.is_symlink() and (path.suffix == ".so" or ".so." in path.name):
            so = read_shared_object(path)
            if so is not None:
                found.append(so)
    return found


def _expand(entry: str, origin: Path) -> Path:
    return Path(entry.replace("$ORIGIN", str(origin)).replace("${ORIGIN}", str(origin)))


def library_problems(package: Package, arch: str, provided: set[str] | None = None) -> list[str]:
    """Each shared object of the wrong architecture, and each NEEDED library that would not be found on Lambda."""
    provided = runtime_libraries(arch) if provided is None else provided
    library_dirs = package.library_dirs()
    problems = []
    for root in package.roots():
        for so in shared_objects(root):
            where = f"{package.name}: {so.path.relative_to(root.parent)}"
            if so.machine != ELF_MACHINE[arch]:
                problems.append(f"{where} is built for {so.machine}, not {arch}")
                continue
            for name in so.needed:
                if name in provided:
                    continue
                own = [_expand(e, so.path.parent) for e in so.search_path if "$ORIGIN" in e or "${ORIGIN}" in e]
                if any((d / name).is_file() for d in own + library_dirs):
                    continue
                problems.append(
                    f"{where} needs {name}, which neither the package (its RPATH, /var/task, /var/task/lib, the "
                    f"layers' lib/) nor the python3.12 runtime (infra/packaging/lambda-runtime-libraries.txt) provides"
                )
    return problems


def dependency_problems(
    package: Package, runtime_dir: Path, pip_dir: Path, python312: str, arch: str = "x86_64"
) -> list[str]:
    """pip check of the function, its layers and the runtime's boto3, in import order; [] when consistent.

    pip check also compares each wheel's platform tag with this host: for another architecture's build that
    says nothing (library_problems checks every binary's architecture instead), so those lines are dropped."""
    foreign = ELF_MACHINE[arch] != ELF_MACHINE.get({"aarch64": "arm64"}.get(os.uname().machine, os.uname().machine))
    path = [*package.python_path(), runtime_dir, pip_dir]
    done = subprocess.run(
        [python312, "-S", "-m", "pip", "check", "--disable-pip-version-check"],
        env={
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": os.pathsep.join(str(p) for p in path),
            "PYTHONNOUSERSITE": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYENV_VERSION": os.environ.get("PYENV_VERSION", "3.12.1"),
        },
        capture_output=True,
        text=True,
    )
    if done.returncode == 0:
        return []
    # pip check prints one line per problem on stdout (warnings of pip's own configuration go to stderr).
    lines = [
        ln
        for ln in done.stdout.splitlines()
        if ln.strip()
        and not (ln.split(" ", 1)[0].lower() in WITHOUT_DEPENDENCIES and "which is not installed" in ln)
        and not (foreign and ln.endswith("is not supported on this platform"))
    ]
    if not done.stdout.strip():
        return [f"{package.name}: pip check failed ({done.returncode}): {done.stderr.strip()[-500:]}"]
    return [f"{package.name}: {ln} (pip check with the runtime's boto3)" for ln in lines]


def pip_only(folder: Path) -> Path:
    """pip alone in a folder, to run `pip check` under CPython 3.12 without any site-packages."""
    if not (folder / "pip").is_dir():
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--target", str(folder)]
            + ["pip"],
            check=True,
        )
    return folder


def packages(build_dir: Path) -> list[Package]:
    """Every zip function of a build (its sizes.json says which layers each has)."""
    sizes = json.loads((build_dir / "sizes.json").read_text())
    return [
        Package(fid, build_dir / "functions" / fid, [build_dir / "layers" / lid for lid in f["layers"]])
        for fid, f in sorted(sizes["functions"].items())
        if f["packaging"] == "zip"
    ]


def audit(arch: str, build_dir: Path, runtime_dir: Path, pip_dir: Path, python312: str) -> list[str]:
    problems = []
    for package in packages(build_dir):
        problems += library_problems(package, arch)
        problems += dependency_problems(package, runtime_dir, pip_dir, python312, arch)
    return problems


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(HERE))
    import package as packaging  # infra/packaging/package.py

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", choices=[*packaging.ARCHITECTURES, "all"], default="all")
    a = p.parse_args(argv)
    python312 = packaging.python312()
    if python312 is None:
        print("the audit needs CPython 3.12 (python3.12 on PATH, or PYTHON312)", file=sys.stderr)
        return 2
    problems = []
    for arch in packaging.ARCHITECTURES if a.arch == "all" else [a.arch]:
        build_dir = packaging.out_dir(arch)
        if not (build_dir / "sizes.json").exists():
            problems.append(f"{arch}: no build in {build_dir}; run `make package`")
            continue
        found = audit(arch, build_dir, packaging.runtime_dir(), pip_only(packaging.OUT.parent / "pip-only"), python312)
        problems += [f"{arch}: {pr}" for pr in found]
        print(f"{arch}: {len(packages(build_dir))} functions audited, {len(found)} problems")
    for pr in problems:
        print("PROBLEM:", pr, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
