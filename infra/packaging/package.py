"""Build every Lambda function of template.yaml with its layers, as `sam build` does, and measure it.

    python infra/packaging/package.py build            # build/lambda/{layers,functions}/..., sizes (x86_64)
    python infra/packaging/package.py build --arch arm64   # build/lambda-arm64/...
    python infra/packaging/package.py build --arch all --no-record --if-changed   # what the runtime audit needs
    python infra/packaging/package.py build --only PredictFunction

Layers and functions are built the way SAM builds them: ``BuildMethod: makefile`` runs
``make build-<LogicalId> ARTIFACTS_DIR=...`` in the source folder; ``BuildMethod: python3.12`` (or none)
copies the source and pip-installs its requirements.txt (into ``python/`` for a layer). pip resolves
manylinux wheels for CPython 3.12 and the target architecture (``--arch``: x86_64, the template's default, or
arm64; ``LAMBDA_ARCHITECTURE`` for the Makefiles, see infra/packaging/lambda.mk) whatever Python runs this script.

The result is written to ``infra/packaging/package-sizes.json`` (committed): per function, the
unzipped size with its layers, the distributions each part holds, and a hash of the inputs that
decide the dependencies (requirements files, Makefiles, build methods, layer lists). The unit test
tests/unit/test_packaging.py reads that file: a dependency change without a re-measure, or a size
over the limit, fails the build.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "build" / "lambda"  # x86_64; arm64 builds go to build/lambda-arm64 (out_dir)
SIZES = Path(__file__).with_name("package-sizes.json")
MAKE_FRAGMENT = Path(__file__).with_name("lambda.mk")  # the architecture and pip options every Makefile includes
ARCHITECTURES = ("x86_64", "arm64")  # the template's Architecture parameter; x86_64 is its default
WHEEL_MACHINE = {"x86_64": "x86_64", "arm64": "aarch64"}

LAMBDA_ZIP_LIMIT_MB = 250.0  # unzipped, function code plus all its layers
HEADROOM = 0.20
BUDGET_MB = LAMBDA_ZIP_LIMIT_MB * (1 - HEADROOM)  # 200 MB
MAX_LAYERS = 5


def pip_target(arch: str = "x86_64") -> list[str]:
    """pip options for CPython 3.12 manylinux wheels of one Lambda architecture (as lambda.mk's PIP_TARGET)."""
    machine = WHEEL_MACHINE[arch]
    return [
        "--platform",
        f"manylinux_2_28_{machine}",
        "--platform",
        f"manylinux2014_{machine}",
        "--implementation",
        "cp",
        "--python-version",
        "3.12",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--quiet",
    ]


def out_dir(arch: str) -> Path:
    """Where one architecture's build goes: build/lambda (x86_64, what the benchmarks run) or build/lambda-arm64."""
    return OUT if arch == "x86_64" else OUT.with_name(f"lambda-{arch}")


# Packages whose import the predict function must never pay for (size and cold start).
PREDICT_FORBIDDEN = ("scipy", "pandas", "scikit-learn", "scikit_learn", "sklearn")
# Why each function is packaged the way it is; the README's packaging table comes from here.
PACKAGING_NOTES = {
    "PredictFunction": "zip: fastapi, mangum, pydantic + core and ML layers; scores through lib_lightgbm "
    "(ctypes), no scipy/pandas/sklearn",
    "TrainFunction": "zip, trimmed: lightgbm + scikit-learn + pandas + scipy install to ~380 MB; layer "
    "duplicates removed, tests dropped, .so stripped",
    "FeatureRefreshFunction": "zip: duckdb (its own package: it does not fit beside scikit-learn) + core and ML "
    "layers (numpy, lib_lightgbm to score with the champion)",
}


def load_template() -> dict[str, Any]:
    sys.path.insert(0, str(ROOT / "shared"))
    from churnguard.local.template import load_template as _load

    return _load(ROOT / "template.yaml")


def _ref(x: Any) -> str | None:
    return x.get("Ref") if isinstance(x, dict) else None


def units(template: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """(layers, functions) of the template, each with its source folder and build method."""
    resources = template.get("Resources", {})
    glob = template.get("Globals", {}).get("Function", {})
    layers, functions = {}, {}
    for lid, r in resources.items():
        props, meta = r.get("Properties", {}) or {}, r.get("Metadata", {}) or {}
        if r.get("Type") == "AWS::Serverless::LayerVersion":
            layers[lid] = {"src": ROOT / props["ContentUri"], "method": meta.get("BuildMethod", "python3.12")}
        elif r.get("Type") == "AWS::Serverless::Function":
            refs = props.get("Layers", glob.get("Layers", []))
            functions[lid] = {
                "src": ROOT / props["CodeUri"] if props.get("CodeUri") else None,
                "method": meta.get("BuildMethod", "python3.12"),
                "package_type": props.get("PackageType", "Zip"),
                "layers": [_ref(x) or str(x) for x in refs],
            }
    return layers, functions


def _requirements(folder: Path) -> list[str]:
    f = folder / "requirements.txt"
    if not f.exists():
        return []
    return [ln.strip() for ln in f.read_text().splitlines() if ln.strip() and not ln.strip().startswith("#")]


def _pip(target: Path, requirements: Path, arch: str) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            *pip_target(arch),
            "--no-compile",
            "--target",
            str(target),
            "-r",
            str(requirements),
        ],
        check=True,
    )


def build_unit(src: Path, method: str, logical_id: str, out: Path, layer: bool, arch: str = "x86_64") -> None:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    py312 = python312()
    if py312 is None:
        raise SystemExit(
            "packaging needs a CPython 3.12 (the Lambda runtime) to compile bytecode: put python3.12 on "
            "PATH or set PYTHON312"
        )
    env312 = {**os.environ, **PY312_ENV}
    if method == "makefile":
        # Like SAM: make in the source folder, writing to ARTIFACTS_DIR; the Python that runs us runs pip,
        # and the Makefile compiles bytecode with python3.12 (on PATH under sam build).
        subprocess.run(
            [
                "make",
                "-s",
                "-C",
                str(src),
                f"build-{logical_id}",
                f"ARTIFACTS_DIR={out}",
                f"PYTHON={sys.executable}",
                f"PYTHON312={py312}",
                f"LAMBDA_ARCHITECTURE={arch}",
            ],
            check=True,
            env=env312,
        )
        return
    dest = out / "python" if layer else out
    shutil.copytree(src, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "tests"))
    if _requirements(src):
        # SAM's python3.12 builder runs pip under python3.12, which writes (timestamp-checked) 3.12 bytecode.
        _pip(dest, src / "requirements.txt", arch)
        _compile(dest)


def bytecode(folder: Path) -> dict[str, int]:
    """How many modules a unit holds and how many have CPython 3.12 bytecode beside them."""
    modules = [p for p in folder.rglob("*.py") if p.is_file()]
    compiled = sum(1 for p in modules if (p.parent / "__pycache__" / f"{p.stem}.cpython-312.pyc").exists())
    return {"modules": len(modules), "with_bytecode_312": compiled}


def tree_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def distributions(folder: Path) -> dict[str, str]:
    """name -> version of every installed distribution under folder (from *.dist-info)."""
    out = {}
    for d in folder.rglob("*.dist-info"):
        name, _, version = d.name[: -len(".dist-info")].partition("-")
        out[name.lower().replace("_", "-")] = version
    return dict(sorted(out.items()))


def inputs_hash(unit: dict[str, Any], layers: dict[str, dict[str, Any]]) -> str:
    """What decides a function's dependencies: build methods, layer list, requirements files, Makefiles (and the
    fragment they include)."""
    h = hashlib.sha256(MAKE_FRAGMENT.read_bytes())
    parts = [("function", unit)] + [(lid, layers.get(lid, {"src": None, "method": "?"})) for lid in unit["layers"]]
    for name, u in parts:
        h.update(f"{name}|{u.get('method')}|{u.get('package_type', '')}|{','.join(u.get('layers', []))}\n".encode())
        src = u.get("src")
        if src is None:
            continue
        for f in sorted(Path(src).glob("requirements*.txt")) + sorted(Path(src).glob("Makefile")):
            h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def build(only: list[str] | None = None, out: Path = OUT, arch: str = "x86_64") -> dict[str, Any]:
    template = load_template()
    layers, functions = units(template)
    wanted = {k: v for k, v in functions.items() if not only or k in only}
    layer_info: dict[str, Any] = {}
    started = time.perf_counter()
    for lid in sorted({lid for f in wanted.values() for lid in f["layers"]}):
        if lid not in layers:
            raise SystemExit(f"layer {lid} is not defined in template.yaml")
        d = out / "layers" / lid
        print(f"building layer {lid} ({layers[lid]['method']})", file=sys.stderr)
        build_unit(layers[lid]["src"], layers[lid]["method"], lid, d, layer=True, arch=arch)
        layer_info[lid] = {
            "mb": round(tree_bytes(d) / 2**20, 1),
            "distributions": distributions(d),
            "bytecode": bytecode(d),
        }
    result: dict[str, Any] = {}
    for fid, f in sorted(wanted.items()):
        if f["package_type"] != "Zip":
            result[fid] = {"packaging": "image", "unzipped_mb": None, "note": "container image: 10 GB limit"}
            continue
        d = out / "functions" / fid
        print(f"building function {fid} ({f['method']})", file=sys.stderr)
        build_unit(f["src"], f["method"], fid, d, layer=False, arch=arch)
        own = tree_bytes(d)
        total = own + sum(int(layer_info[lid]["mb"] * 2**20) for lid in f["layers"])
        result[fid] = {
            "packaging": "zip",
            "unzipped_mb": round(total / 2**20, 1),
            "function_mb": round(own / 2**20, 1),
            "layers": f["layers"],
            "distributions": distributions(d),
            "bytecode": bytecode(d),
            "inputs_sha256": inputs_hash(f, layers),
            "note": PACKAGING_NOTES.get(fid, "zip: core and ML layers plus its own requirements"),
        }
        if fid == "TrainFunction":
            result[fid]["smoke"] = (
                smoke_train(out, f["layers"])
                if WHEEL_MACHINE[arch] == os.uname().machine
                else f"not run: {arch} code does not run on this {os.uname().machine} host"
            )
    report = {
        "python": f"3.12 (manylinux_2_28 / manylinux2014 {WHEEL_MACHINE[arch]} wheels)",
        "architecture": arch,
        "limit_mb": LAMBDA_ZIP_LIMIT_MB,
        "budget_mb": BUDGET_MB,
        "layers": layer_info,
        "functions": result,
        "build_seconds": round(time.perf_counter() - started, 1),
    }
    return report


# The data comes from the host (churnguard.local, the generator, is not shipped in the layer).
SMOKE_TRAIN = """
import os
from churnguard.domain.schema import Schema
from churnguard.services.lifecycle import build_bundle
from churnguard.domain.training import TrainingConfig, read_csv, train
from churnguard.domain.predictor import Predictor
import app  # the handler module imports too
config = TrainingConfig.from_dict({"n_folds": 3, "max_rounds": 60, "early_stopping_rounds": 10})
r = train(read_csv(os.environ["SMOKE_DATA"]), Schema.default(), config)
p = Predictor(build_bundle("v-smoke", r, Schema.default(), "0" * 64, "smoke"))
print("ok", p.booster.num_feature())
"""


PY312_ENV = {"PYENV_VERSION": "3.12.1"}  # selects pyenv's 3.12 when python3.12 is its shim


@functools.cache
def python312() -> str | None:
    """A CPython 3.12 to run built packages with (pyenv provides one on the dev machines); looked up once."""
    for candidate in (
        os.environ.get("PYTHON312"),
        shutil.which("python3.12"),
        str(Path.home() / ".pyenv" / "versions" / "3.12.1" / "bin" / "python3.12"),
    ):
        if candidate and Path(candidate).exists():
            try:
                subprocess.run(
                    [candidate, "-c", "import sys; assert sys.version_info[:2] == (3, 12)"],
                    check=True,
                    capture_output=True,
                    env={**os.environ, **PY312_ENV},
                )
                return candidate
            except (OSError, subprocess.CalledProcessError):
                continue
    return None


RUNTIME_PROVIDED = ["boto3"]  # the python3.12 Lambda runtime ships boto3/botocore: not part of any package


def runtime_dir(out: Path = OUT) -> Path:
    """What the Lambda runtime itself provides (boto3), installed once for local runs; never counted."""
    d = out / "runtime"
    if not (d / "boto3").exists():
        d.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                *pip_target(),  # boto3 is pure Python: one copy serves both architectures
                "--no-compile",
                "--target",
                str(d),
                *RUNTIME_PROVIDED,
            ],
            check=True,
        )
        if python312():  # the runtime's own boto3 comes with 3.12 bytecode
            _compile(d, "--invalidation-mode", "unchecked-hash")
    return d


def _compile(folder: Path, *options: str) -> None:
    """CPython 3.12 bytecode for every module under ``folder`` (as pip under python3.12 writes it)."""
    subprocess.run(
        [python312(), "-m", "compileall", "-qq", "-j", "0", *options, str(folder)], env={**os.environ, **PY312_ENV}
    )


def lambda_path(function_dir: Path, layer_dirs: list[Path], out: Path = OUT) -> str:
    """sys.path order on Lambda: the function (/var/task), layers' python/ (/opt/python), then the runtime's boto3."""
    return os.pathsep.join([str(function_dir)] + [str(d / "python") for d in layer_dirs] + [str(runtime_dir(out))])


def _smoke_data(path: Path) -> None:
    sys.path.insert(0, str(ROOT / "shared"))
    from churnguard.local.synth import generate_customers

    generate_customers(400, seed=1).to_csv(path, index=False)


def smoke_train(out: Path, layers: list[str]) -> str:
    """Train a small model with the built TrainFunction package (its trimming must not break training)."""
    py = python312()
    if py is None:
        return "skipped: no python3.12 found"
    env = {
        "PATH": os.environ.get("PATH", ""),
        **PY312_ENV,
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",  # leave the package as built (and as measured)
        "PYTHONPATH": lambda_path(out / "functions" / "TrainFunction", [out / "layers" / lid for lid in layers], out),
        "MODEL_BUCKET": "smoke",
        "REGISTRY_TABLE": "smoke",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    data = out / "smoke-train.csv"
    _smoke_data(data)
    env["SMOKE_DATA"] = str(data)
    r = subprocess.run(
        [py, "-s", "-c", SMOKE_TRAIN],
        env=env,
        capture_output=True,
        text=True,
        cwd=str(out / "functions" / "TrainFunction"),
    )
    if r.returncode != 0:
        raise SystemExit(f"TrainFunction package cannot train:\n{r.stderr[-3000:]}")
    return "trained a model with the built package under python3.12"


def check(report: dict[str, Any]) -> list[str]:
    problems = []
    for fid, f in report["functions"].items():
        if f["packaging"] != "zip":
            continue
        if f["unzipped_mb"] > report["budget_mb"]:
            problems.append(
                f"{fid}: {f['unzipped_mb']} MB unzipped with layers, over the {report['budget_mb']:.0f} MB budget"
            )
        if len(f["layers"]) > MAX_LAYERS:
            problems.append(f"{fid}: {len(f['layers'])} layers, Lambda allows {MAX_LAYERS}")
    pred = report["functions"].get("PredictFunction")
    if pred:
        held = set(pred["distributions"]) | {
            d for lid in pred["layers"] for d in report["layers"][lid]["distributions"]
        }
        bad = sorted(held & set(PREDICT_FORBIDDEN))
        if bad:
            problems.append(f"PredictFunction packages {bad}: keep them out of the online path")
    return problems


def build_key(arch: str) -> str:
    """One hash of everything that decides an architecture's packages (every function's inputs_hash)."""
    layers, functions = units(load_template())
    parts = [arch] + [f"{fid}:{inputs_hash(f, layers)}" for fid, f in sorted(functions.items())]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def is_current(arch: str, out: Path | None = None) -> bool:
    """Whether out/sizes.json is a complete build of the current inputs for this architecture."""
    sizes = (out or out_dir(arch)) / "sizes.json"
    try:
        return json.loads(sizes.read_text()).get("build_key") == build_key(arch)
    except (OSError, ValueError):
        return False


def record(report: dict[str, Any], arch: str, partial: bool) -> None:
    """Write a build's measurements into package-sizes.json: x86_64 at the top level, arm64 under "arm64"."""
    recorded = json.loads(SIZES.read_text()) if SIZES.exists() else {}
    section = recorded if arch == "x86_64" else recorded.setdefault(arch, {})
    if partial and section.get("functions"):
        section["functions"].update(report["functions"])
        section["layers"].update(report["layers"])
        section.update({k: v for k, v in report.items() if k not in ("functions", "layers")})
    elif arch == "x86_64":
        recorded = {**report, **{a: recorded[a] for a in ARCHITECTURES if a != "x86_64" and a in recorded}}
    else:
        recorded[arch] = dict(report)
    SIZES.write_text(json.dumps(recorded, indent=2, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("command", choices=["build"])
    p.add_argument("--only", nargs="*", help="function logical ids (default: all)")
    p.add_argument("--arch", choices=[*ARCHITECTURES, "all"], default="x86_64", help="Lambda architecture (x86_64)")
    p.add_argument("--out", type=Path, help="build folder (default: build/lambda, or build/lambda-arm64)")
    p.add_argument("--no-record", action="store_true", help="do not rewrite infra/packaging/package-sizes.json")
    p.add_argument("--if-changed", action="store_true", help="skip an architecture whose last build is current")
    a = p.parse_args(argv)
    archs = list(ARCHITECTURES) if a.arch == "all" else [a.arch]
    if a.out and len(archs) > 1:
        p.error("--out takes one architecture: give --arch x86_64 or --arch arm64")
    problems = []
    for arch in archs:
        out = a.out or out_dir(arch)
        if a.if_changed and not a.only and is_current(arch, out):
            print(f"{arch}: {out} is current", file=sys.stderr)
            continue
        report = build(a.only, out, arch)
        if not a.only:
            report["build_key"] = build_key(arch)
        if not a.no_record:
            record({k: v for k, v in report.items() if k != "build_key"}, arch, partial=bool(a.only))
        (out / "sizes.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
        for fid, f in sorted(report["functions"].items()):
            size = f["unzipped_mb"] if f["unzipped_mb"] is not None else "-"
            print(f"{arch:7s} {fid:28s} {f['packaging']:5s} {size:>7} MB")
        problems += [f"{arch}: {pr}" for pr in check(report)]
    for pr in problems:
        print("PROBLEM:", pr, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
