"""Guard Lambda's package-size limit: every zip function, with its layers as built, stays within
250 MB unzipped with 20% headroom, and a dependency change cannot slip in without a re-measure.

Sizes come from infra/packaging/package-sizes.json, written by `make package` (which builds each
function as `sam build` does). This test recomputes, from the current template and requirements
files, the hash of what decides each function's dependencies and compares it with the measured one.
"""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location("churnguard_packaging", ROOT / "infra" / "packaging" / "package.py")
packaging = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(packaging)

RECORD = json.loads(packaging.SIZES.read_text())
LAYERS, FUNCTIONS = packaging.units(packaging.load_template())


def test_every_function_of_the_template_was_measured():
    missing = sorted(set(FUNCTIONS) - set(RECORD["functions"]))
    assert not missing, f"not measured: {missing}; run `make package`"


@pytest.mark.parametrize("fid", sorted(FUNCTIONS))
def test_dependencies_have_not_changed_since_measured(fid):
    recorded = RECORD["functions"].get(fid, {})
    assert recorded.get("inputs_sha256") == packaging.inputs_hash(FUNCTIONS[fid], LAYERS), (
        f"{fid}: requirements, Makefiles or layers changed since its size was measured; run `make package`"
    )


@pytest.mark.parametrize("fid", sorted(FUNCTIONS))
def test_each_zip_function_fits_with_headroom(fid):
    f = RECORD["functions"][fid]
    if f["packaging"] == "image":
        assert FUNCTIONS[fid]["package_type"] == "Image"
        return
    assert f["unzipped_mb"] <= packaging.BUDGET_MB, f"{fid} is {f['unzipped_mb']} MB with its layers"
    assert packaging.BUDGET_MB <= 0.8 * packaging.LAMBDA_ZIP_LIMIT_MB
    assert len(f["layers"]) <= packaging.MAX_LAYERS
    # the recorded total is the function plus exactly its layers as measured
    layer_mb = sum(RECORD["layers"][lid]["mb"] for lid in f["layers"])
    assert f["unzipped_mb"] == pytest.approx(f["function_mb"] + layer_mb, abs=0.3)


def test_predict_carries_no_scipy_pandas_or_sklearn():
    f = RECORD["functions"]["PredictFunction"]
    held = set(f["distributions"]) | {d for lid in f["layers"] for d in RECORD["layers"][lid]["distributions"]}
    assert not held & set(packaging.PREDICT_FORBIDDEN), sorted(held & set(packaging.PREDICT_FORBIDDEN))
    assert {"fastapi", "mangum", "pydantic", "numpy", "lightgbm"} <= held


def test_the_predict_path_ships_python312_bytecode():
    """Lambda's code folders are read-only: a module without 3.12 bytecode is compiled at every cold start
    (measured: about 1.5 s cold start without it, 0.7 s with it)."""
    f = RECORD["functions"]["PredictFunction"]
    for name, part in [("PredictFunction", f)] + [(lid, RECORD["layers"][lid]) for lid in f["layers"]]:
        b = part["bytecode"]
        assert b["modules"] > 0 and b["with_bytecode_312"] == b["modules"], f"{name}: {b}"


def test_the_size_check_catches_an_oversized_function():
    fat = json.loads(json.dumps(RECORD))
    fat["functions"]["PredictFunction"]["unzipped_mb"] = 230.0
    fat["functions"]["PredictFunction"]["distributions"]["scipy"] = "1.17.1"
    problems = packaging.check(fat)
    assert any("PredictFunction" in p and "budget" in p for p in problems)
    assert any("scipy" in p for p in problems)
    assert packaging.check(RECORD) == []


def test_a_requirements_change_changes_the_hash(tmp_path):
    unit = dict(FUNCTIONS["PredictFunction"], src=tmp_path)
    (tmp_path / "requirements.txt").write_text("fastapi\n")
    before = packaging.inputs_hash(unit, LAYERS)
    (tmp_path / "requirements.txt").write_text("fastapi\nscipy\n")
    assert packaging.inputs_hash(unit, LAYERS) != before


@pytest.mark.parametrize("fid", sorted(FUNCTIONS))
def test_arm64_was_measured_from_the_same_inputs_and_fits(fid):
    """`make package` builds arm64 too; its record sits under "arm64" in the same file."""
    arm = RECORD.get("arm64") or {}
    assert arm.get("architecture") == "arm64", "arm64 not measured; run `make package`"
    f = arm["functions"][fid]
    assert f["inputs_sha256"] == packaging.inputs_hash(FUNCTIONS[fid], LAYERS), f"{fid}: run `make package`"
    assert f["unzipped_mb"] <= packaging.BUDGET_MB, f"{fid} is {f['unzipped_mb']} MB with its layers on arm64"
    assert packaging.check(arm) == []
