"""The `churn` CLI against the embedded emulator (moto server on 127.0.0.1), as a user runs it."""

import json
import os
import re
import subprocess
import sys

import pytest

from churnguard.local.emulator import Emulator
from tests.conftest import ROOT, TELCO_CSV, synth_csv_bytes

CHURN = [sys.executable, "-m", "churnguard"]


@pytest.fixture
def emulator():
    emu = Emulator(ROOT / "template.yaml").start()
    yield emu
    emu.stop()


def run(args, env, check=True):
    p = subprocess.run(CHURN + args, env={**os.environ, **env}, capture_output=True, text=True, timeout=600)
    if check and p.returncode != 0:
        raise AssertionError(f"churn {args} failed ({p.returncode}): {p.stderr}")
    return p


def test_train_promote_predict_through_the_cli(emulator, tmp_path):
    data = tmp_path / "customers.csv"
    data.write_bytes(synth_csv_bytes(1500))
    cfg = tmp_path / "train.yaml"
    cfg.write_text("n_folds: 3\nmax_rounds: 300\n")
    out = json.loads(
        run(["train", "--data", str(data), "--config", str(cfg), "--json", "--quiet"], emulator.env).stdout
    )
    assert out["status"] == "candidate" and out["metrics"]["cv_roc_auc"] > 0.7
    run(["promote", out["version"]], emulator.env)
    listed = json.loads(run(["models", "list", "--json"], emulator.env).stdout)
    assert listed["champion"] == out["version"]
    row = json.loads((ROOT / "events/predict.json").read_text())["body"]  # the API Gateway event's JSON body
    pred = json.loads(run(["predict", "--json", row], emulator.env).stdout)
    assert pred[0]["model_version"] == out["version"]


def test_bad_data_is_refused_with_a_report_and_nothing_registered(emulator, tmp_path):
    data = tmp_path / "bad.csv"
    data.write_bytes(synth_csv_bytes(300).replace(b",Yes\n", b",Maybe\n", 3))
    p = run(["train", "--data", str(data), "--json", "--quiet"], emulator.env, check=False)
    assert p.returncode == 2
    assert "more than two labels" in p.stderr
    assert json.loads(run(["models", "list", "--json"], emulator.env).stdout)["versions"] == []


def test_schema_infer_writes_a_schema_that_validates_its_data(tmp_path):
    data = tmp_path / "customers.csv"
    data.write_bytes(synth_csv_bytes(400))
    out = tmp_path / "schema.yaml"
    run(["schema", "infer", "--data", str(data), "--target", "Churn", "--out", str(out)], {})
    p = run(["schema", "validate", "--data", str(data), "--schema", str(out)], {})
    assert "0 bad" in p.stdout
    text = out.read_text()
    assert "customerID" in text and "id_column: customerID" in text


def test_train_on_the_telco_csv_reports_cv_figures(tmp_path):
    """The issue's 'done when' command; the real data is beside the repository in CI."""
    data = TELCO_CSV if TELCO_CSV.exists() else tmp_path / "gen.csv"
    if not TELCO_CSV.exists():
        data.write_bytes(synth_csv_bytes(7000))
    env = {k: "" for k in ("MODEL_BUCKET", "REGISTRY_TABLE")}
    out = json.loads(run(["train", "--data", str(data), "--json", "--quiet"], env).stdout)
    m = out["metrics"]
    assert {"cv_roc_auc", "brier", "cv_pr_auc", "f1", "calibration_error", "confusion_matrix"} <= set(m)
    assert m["cv_roc_auc"] > 0.8 and m["brier"] < 0.16


def test_infer_then_train_on_a_csv_with_spaced_headers_and_coded_columns(tmp_path):
    """The Iranian CSV's shape (all numeric, coded categories, double spaces in names) with no hand edit:
    every column's role and reason as JSON, then a search-trained model and its report, with progress."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(12)
    n = 1200
    use = rng.gamma(2.0, 1500.0, n).round()
    plan = rng.choice(["1", "2"], n, p=[0.8, 0.2])
    complains = (rng.random(n) < 0.08).astype(int)
    logit = -2.5 + 2.5 * complains * (use > 2500) + 1.5 * ((plan == "1") & (use < 800)) + rng.normal(0, 0.5, n)
    frame = pd.DataFrame(
        {
            "Call  Failure": rng.poisson(6, n).astype(str),
            "Complains": complains.astype(str),
            "Seconds of Use": use.astype(int).astype(str),
            "Tariff Plan": plan,
            "Age Group": rng.choice(["1", "2", "3", "4", "5"], n),
            "Customer Value": [f"{v:.3f}" for v in use * rng.uniform(0.05, 0.15, n)],
            "Churn": (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int).astype(str),
        }
    )
    data = tmp_path / "telecom.csv"
    frame.to_csv(data, index=False)
    schema_path = tmp_path / "schema.yaml"
    inferred = json.loads(
        run(
            ["schema", "infer", "--data", str(data), "--target", "Churn", "--out", str(schema_path), "--json"], {}
        ).stdout
    )
    roles = {c["column"]: (c["role"], c["kind"]) for c in inferred["columns"]}
    assert roles["Call  Failure"] == ("feature", "numeric")
    assert roles["Complains"] == ("feature", "binary") and roles["Age Group"] == ("feature", "coded")
    assert roles["Churn"][0] == "target" and inferred["schema"]["target"]["positive"] == "1"
    assert "Call  Failure" in schema_path.read_text()

    cfg = tmp_path / "train.yaml"
    cfg.write_text("n_folds: 3\ninner_folds: 3\nmax_rounds: 400\n")
    env = {k: "" for k in ("MODEL_BUCKET", "REGISTRY_TABLE")}
    p = run(["train", "--data", str(data), "--schema", str(schema_path), "--config", str(cfg)], env)
    # Progress per stage (the outer folds' searches, then the served model's) with time elapsed and an ETA.
    assert re.search(r"cross-validation .* \d+/\d+  [\d.]+ s, about [\d.]+ s left", p.stderr), p.stderr
    assert re.search(r"final model .* [\d.]+ s, done", p.stderr), p.stderr
    assert "CV ROC-AUC" in p.stdout and "inner log-loss" in p.stdout
    assert any(line.startswith("model ") and "leaves" in line for line in p.stdout.splitlines())
