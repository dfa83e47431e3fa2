"""`churn features build|sql` on local logs, the training CSV going unchanged into `churn train`, bad input
answered with an error and no traceback, and `make demo EVENTS=1`'s command end to end on a free port."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import yaml

from churnguard.entrypoints.cli import main
from churnguard.local.emulator import free_port
from tests.conftest import FAST, ROOT
from tests.functional.event_fixtures import AS_OF


def test_build_then_train_on_the_output_unchanged(event_logs, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MODEL_BUCKET", raising=False)
    monkeypatch.delenv("REGISTRY_TABLE", raising=False)
    _, folder = event_logs
    out = tmp_path / "train.csv"
    argv = ["features", "build", "--definition", str(folder / "features.yaml"), "--every", "30d"]
    argv += ["--from", "2025-06-06", "--to", "2026-05-02", "--out", str(out), "--as-of", AS_OF.isoformat()]

    assert main(argv) == 0

    printed = capsys.readouterr().out
    assert "2026-05-02T00:00:00Z:" in printed and "label rate" in printed
    assert f"churn train --data {out} --schema {tmp_path / 'train.schema.yaml'}" in printed
    (tmp_path / "fast.yaml").write_text(yaml.safe_dump(FAST))
    argv = ["train", "--data", str(out), "--schema", str(tmp_path / "train.schema.yaml")]
    assert main([*argv, "--config", str(tmp_path / "fast.yaml"), "--json", "--quiet"]) == 0
    trained = json.loads(capsys.readouterr().out)
    assert 0.6 < trained["metrics"]["cv_roc_auc"] < 1.0


def test_bad_input_is_an_error_message_not_a_traceback(event_logs, tmp_path, capsys):
    _, folder = event_logs
    broken = tmp_path / "broken.yaml"
    broken.write_text((folder / "features.yaml").read_text().replace("agg: sum", "agg: total"))
    base = ["features", "build", "--out", str(tmp_path / "x.csv")]

    assert main([*base, "--definition", str(broken), "--cutoffs", "2026-01-01"]) == 2
    assert "unknown aggregate 'total'" in capsys.readouterr().err
    assert (
        main([*base, "--definition", str(folder / "features.yaml"), "--cutoffs", "2026-01-01", "--every", "30d"]) == 2
    )
    assert "either --cutoffs or --every" in capsys.readouterr().err
    assert main([*base, "--definition", str(folder / "features.yaml"), "--cutoffs", "next week"]) == 2
    assert "'next week' is not a date or time" in capsys.readouterr().err
    assert main([*base, "--definition", str(tmp_path / "none.yaml"), "--cutoffs", "2026-01-01"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()


def test_sql_prints_the_statements_the_definition_compiles_to(event_logs, capsys):
    _, folder = event_logs

    assert main(["features", "sql", "--definition", str(folder / "features.yaml")]) == 0

    text = capsys.readouterr().out
    assert "CREATE TEMP TABLE ev_usage" in text and "CREATE TEMP TABLE fh_usage" in text and "known_us <" in text


def test_the_events_demo_builds_trains_refreshes_and_scores_a_customer_by_id():
    port = free_port()
    p = subprocess.run(
        [sys.executable, "-m", "churnguard", "demo", "--events", "--no-serve", "--port", str(port)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    assert re.search(r"time-ordered CV ROC-AUC 0\.\d+ on the latest 3 cutoffs; the planted mechanism allows", p.stdout)
    assert re.search(r"customers' features stored, \d+ scored by v", p.stdout)
    match = re.search(r"POST /customers/(C\d+)/predict after", p.stdout)
    assert match, p.stdout[-2000:]
    body = json.loads(re.search(r"^\{.*?^\}", p.stdout, re.S | re.M).group(0))
    assert 0 < body["churn_probability"] < 1 and body["reasons"] and body["features_as_of"]
    assert "emulator stopped" in p.stdout
