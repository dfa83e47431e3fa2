"""Run a function's process with the shared libraries the Lambda python3.12 runtime has, not this host's.

AWS loads a function's native code with ``LD_LIBRARY_PATH=/var/lang/lib:/lib64:/usr/lib64:/var/runtime:
/var/runtime/lib:/var/task:/var/task/lib:/opt/lib`` (the python3.12 base image's Dockerfile) on an Amazon Linux
2023 minimal image, whose libraries are listed in infra/packaging/lambda-runtime-libraries.txt. This host (Debian,
with compilers and ML tooling) has many more, so a package missing e.g. libgomp.so.1 would import here and fail
on AWS. The child therefore runs in a private mount namespace (``unshare --mount``; the executor runs as root)
where the system library folder holds only copies of the host's libraries that the runtime list names, the loader
cache is empty and /usr/local/lib is empty; ``LD_LIBRARY_PATH`` is then built in Lambda's order: the runtime's
libraries, the function's folder and its lib/, the layers' lib/ (what /opt/lib merges, newest layer first).
The libraries the child interpreter's own extension modules load (libbz2, libssl, ...) stay too: they stand in
for what AWS's CPython brings in /var/lang, whatever their Debian names.

Standard library only: LocalStack's process imports it, and the tests run it without LocalStack.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

# The repository's list, reached through this package's editable install (infra/lambda_executor/src/...).
RUNTIME_LIBRARIES = Path(
    os.environ.get("LOCAL_LAMBDA_RUNTIME_LIBRARIES")
    or Path(__file__).resolve().parents[3] / "packaging" / "lambda-runtime-libraries.txt"
)
ENV_HIDE = "LOCAL_LAMBDA_HIDE_HOST_LIBRARIES"  # "0": run on the host's libraries (not what AWS does)
ARCH = {"x86_64": "x86_64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
MULTIARCH = f"{os.uname().machine}-linux-gnu"  # Debian's system library folder: /usr/lib/<MULTIARCH>
HOST_LIBRARY_DIRS = (Path("/usr/lib") / MULTIARCH, Path("/usr/lib64"), Path("/usr/lib"))
# Files under /usr/lib that are not libraries but that a Python process reads: kept as they are.
KEEP_UNDER_USR_LIB = ("os-release", "ssl")


class SandboxUnavailable(RuntimeError):
    """Host libraries cannot be hidden here (not root, or no unshare); the message says why."""


def runtime_sonames(path: Path = RUNTIME_LIBRARIES, arch: str = ARCH) -> list[str]:
    names = []
    for line in path.read_text().splitlines():
        fields = line.split("#", 1)[0].split()
        if fields and (len(fields) == 1 or fields[1] == arch):
            names.append(fields[0])
    return names


def interpreter_libraries(python: str) -> dict[str, Path]:
    """soname -> host file of each library the interpreter and its lib-dynload modules load (ldd)."""
    probe = "import sys, sysconfig; print(sysconfig.get_config_var('DESTSHARED')); print(sys.executable)"
    dynload, executable = subprocess.run(
        [python, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()
    found: dict[str, Path] = {}
    for binary in [Path(executable).resolve(), *sorted(Path(dynload).glob("*.so"))]:
        out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True).stdout
        for name, target in re.findall(r"^\s*(\S+) => (/\S+)", out, re.M):
            found.setdefault(name, Path(target))
    return found


@functools.cache
def runtime_usr_lib(python: str, root: str | None = None) -> Path:
    """A stand-in for /usr/lib: the host's copies of the runtime's libraries (and the interpreter's) only.

    Made once per process and interpreter."""
    usr_lib = Path(tempfile.mkdtemp(prefix="lambda-runtime-usr-lib-", dir=root))
    libs = usr_lib / MULTIARCH
    libs.mkdir()
    for soname in runtime_sonames():
        for folder in HOST_LIBRARY_DIRS:
            if (folder / soname).exists():
                shutil.copy2(folder / soname, libs / soname)  # follows the symlink: the library itself
                break
    for soname, path in interpreter_libraries(python).items():
        if not (libs / soname).exists() and path.resolve().parent in {f.resolve() for f in HOST_LIBRARY_DIRS}:
            shutil.copy2(path, libs / soname)
    for name in KEEP_UNDER_USR_LIB:
        source = Path("/usr/lib") / name
        if source.is_dir():
            shutil.copytree(source, usr_lib / name, symlinks=True)
        elif source.exists():
            shutil.copy2(source, usr_lib / name, follow_symlinks=False)
    (usr_lib / ".empty").mkdir()
    return usr_lib


def available() -> str | None:
    """None if host libraries can be hidden here, else the reason they cannot."""
    if os.environ.get(ENV_HIDE, "1") == "0":
        return f"{ENV_HIDE}=0"
    if os.uname().sysname != "Linux" or not Path("/usr/lib", MULTIARCH).is_dir():
        return f"not a Debian-style Linux host (/usr/lib/{MULTIARCH} missing)"
    if os.geteuid() != 0:
        return "not root: a private mount namespace needs CAP_SYS_ADMIN"
    if not shutil.which("unshare") or not shutil.which("mount"):
        return "unshare or mount (util-linux) not found"
    return None


def library_path(task_root: Path, layers_newest_first: list[Path], hidden: bool) -> str:
    """LD_LIBRARY_PATH in Lambda's order; the runtime's system folder first when it stands in for /lib64."""
    folders = ([str(Path("/usr/lib") / MULTIARCH)] if hidden else []) + [str(task_root), str(task_root / "lib")]
    return os.pathsep.join(folders + [str(layer / "lib") for layer in layers_newest_first])


# Runs inside the new namespace before the function's interpreter: /usr/lib last, since `mount` itself loads
# libraries from there.
_MOUNTS = (
    'set -e; mount --bind /dev/null /etc/ld.so.cache; mount --bind "$1/.empty" /usr/local/lib; '
    'mount --bind "$1" /usr/lib; shift; exec "$@"'
)


def command(argv: list[str], tmp_root: str | None = None) -> list[str]:
    """argv (an interpreter and its arguments) run with the host's extra libraries hidden; SandboxUnavailable if
    that cannot be done here."""
    reason = available()
    if reason:
        raise SandboxUnavailable(reason)
    usr_lib = runtime_usr_lib(argv[0], tmp_root)
    return ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", _MOUNTS, "sh", str(usr_lib)] + [
        *argv
    ]
