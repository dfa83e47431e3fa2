"""`churn score`: --local scores a file with the Lambda's code; the remote mode names what is missing."""

from __future__ import annotations

import csv
import io
import json

from churnguard.entrypoints.cli import main
from tests.conftest import synth_frame


def test_local_mode_scores_a_file_in_chunks(aws, champion, tmp_path, capsys):
    frame = synth_frame(900, seed=41)
    frame.loc[10, "Contract"] = "Forever"
    src = tmp_path / "customers.csv"
    frame.to_csv(src, index=False)
    out = tmp_path / "out"
    code = main(["score", "--local", "--input", str(src), "--output", str(out), "--reasons", "all", "--quiet"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["rows_in"], summary["scored"], summary["rejected"]) == (900, 899, 1)
    assert summary["model_version"] == champion and summary["reasons"]["rows"] == 899
    rows = [r for p in sorted((out / "scores").glob("part-*.csv")) for r in csv.DictReader(io.StringIO(p.read_text()))]
    assert len(rows) == 899 and len({r["customerID"] for r in rows}) == 899
    errors = list(csv.DictReader(io.StringIO((out / "errors" / "part-00000.csv").read_text())))
    assert "Contract: 'Forever' is not one of" in errors[0]["reason"]
    assert json.loads((out / "_job" / "summary.json").read_text())["scored"] == 899


def test_remote_mode_needs_a_state_machine(aws, capsys, monkeypatch):
    monkeypatch.delenv("BATCH_STATE_MACHINE_ARN", raising=False)
    assert main(["score", "--input", "s3://b/in.csv", "--output", "s3://b/out"]) == 2
    assert "BATCH_STATE_MACHINE_ARN" in capsys.readouterr().err


def test_local_mode_with_a_missing_file_fails_clearly(aws, champion, tmp_path, capsys):
    assert main(["score", "--local", "--input", str(tmp_path / "nope.csv"), "--output", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
