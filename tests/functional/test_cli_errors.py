"""Every `churn` command meets bad input with one line naming the problem and the fix, and an exit code
(2: bad input or a missing setting; 1: the work failed), never a traceback.

Most cases run `main()` in this process against moto (fast); the ones about the process itself
(a closed pipe, missing credentials, the interpreter's exit) run `python -m churnguard`.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from churnguard.entrypoints.cli import main
from tests.conftest import ROOT, load_event, synth_csv_bytes
from tests.functional.test_security_degradation import register

CHURN = [sys.executable, "-m", "churnguard"]
GOOD_ROW = load_event("predict")["body"]


def run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return code, err


def the_error(err: str) -> str:
    """The one error line (argparse puts its usage line before it)."""
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def files(tmp_path):
    """A good CSV and one file of every kind that is not a churn CSV."""
    made = {
        "good": synth_csv_bytes(300),
        "empty": b"",
        "binary": bytes(range(256)) * 20,
        "json": json.dumps({"customerID": "1", "tenure": 3}).encode(),
        "semicolons": b"customerID;tenure;Churn\n1;3;No\n",
        "xlsx": b"PK\x03\x04" + b"\x00" * 200,
        "latin1": "customerID,city,Churn\n1,Köln,No\n".encode("latin-1"),
        "bad_yaml": b"n_folds: [\n",
        "unknown_setting": b"n_foldz: 3\n",
        "wrong_type": b"n_folds: many\n",
    }
    paths = {}
    for name, body in made.items():
        paths[name] = tmp_path / f"{name}.{'yaml' if 'yaml' in name or 'setting' in name or 'type' in name else 'csv'}"
        paths[name].write_bytes(body)
    paths["missing"] = tmp_path / "nope.csv"
    paths["folder"] = tmp_path
    return {k: str(v) for k, v in paths.items()}


NOT_A_CSV = [
    ("missing", "does not exist"),
    ("folder", "is a folder"),
    ("empty", "is empty: a CSV needs a header row"),
    ("binary", "is binary"),
    ("json", "looks like JSON, not CSV"),
    ("semicolons", "separated by semicolons"),
    ("xlsx", "zip archive (an Excel .xlsx file?)"),
    ("latin1", "is not UTF-8 text"),
]
DATA_COMMANDS = {
    "schema infer": ["schema", "infer", "--target", "Churn", "--data"],
    "schema validate": ["schema", "validate", "--data"],
    "train": ["train", "--quiet", "--data"],
}


@pytest.mark.parametrize("kind, says", NOT_A_CSV, ids=[k for k, _ in NOT_A_CSV])
@pytest.mark.parametrize("command", list(DATA_COMMANDS))
def test_a_file_that_is_not_a_churn_csv_is_named_with_the_fix(aws, capsys, files, command, kind, says):
    code, err = run(capsys, *DATA_COMMANDS[command], files[kind])
    assert code == 2
    line = the_error(err)
    assert line.startswith(f"error: {files[kind]} ") and says in line, line


@pytest.mark.parametrize("kind, says", [k for k in NOT_A_CSV if k[0] not in ("folder", "latin1")])
def test_batch_scoring_names_a_file_that_is_not_a_csv(aws, champion, capsys, files, tmp_path, kind, says):
    code, err = run(capsys, "score", "--local", "--quiet", "--input", files[kind], "--output", str(tmp_path / "o"))
    assert code == 2 and the_error(err).startswith("error: ")
    assert says.split(":")[0] in err or "does not exist" in err, err


def bad_inputs(files, tmp_path):
    """(argv, exit code, what the message must say) for each command with a backend."""
    return [
        (["models", "show", "v-nope"], 2, "no model version 'v-nope'"),
        (["promote", "v-nope"], 2, "no model version 'v-nope'"),
        (["rollback"], 2, "no previous champion"),
        (["predict", "--json", "{"], 2, "the customer JSON cannot be read"),
        (["predict", "--json", "42"], 2, "give one customer as a JSON object"),
        (["predict", "--json", "[]"], 2, "give one customer as a JSON object"),
        (["predict", "--file", files["missing"]], 2, "No such file"),
        (["compare", "--json", "[1]"], 2, "give one customer as a JSON object"),
        (["canary", "set", "v-x", "--share", "7"], 2, "is not a share from 0 to 1"),
        (["canary", "report", "--since", "2026-13-01"], 2, "YYYY-MM-DD"),
        (["score", "--chunk-mb", "-1", "--input", "a.csv", "--output", "o"], 2, "not a whole number"),
        (["score", "--input", "a.csv", "--output", "s3://b/o", "--state-machine", "arn:x"], 2, "not an s3://"),
        (["score", "--local", "--input", files["missing"], "--output", str(tmp_path)], 2, "no champion model"),
        (["forget", "  "], 2, "give the customer's id"),
        (["evaluate", "v-nope", "--holdout", files["good"]], 2, "no model version 'v-nope'"),
        (["train", "--data", files["good"], "--config", files["bad_yaml"]], 2, "a YAML file cannot be read"),
        (["train", "--data", files["good"], "--config", files["unknown_setting"]], 2, "unknown training settings"),
        (["train", "--data", files["good"], "--config", files["wrong_type"]], 2, "n_folds must be a whole number"),
        (["train", "--data", files["good"], "--config", files["missing"]], 2, "No such file or directory"),
        (["schema", "validate", "--data", files["good"], "--schema", files["good"]], 2, "is not a schema"),
        (["schema", "validate", "--data", files["good"], "--schema", files["missing"]], 2, "cannot read schema"),
        (
            ["schema", "infer", "--data", files["good"], "--target", "Churn", "--out", f"{files['missing']}/x/s.yaml"],
            2,
            "cannot use",
        ),
        (["schema", "infer", "--data", files["good"], "--target", "Quit"], 2, "target column 'Quit'"),
        (["serve", "--port", "70000"], 2, "is not a TCP port"),
        (["demo", "--rows", "0"], 2, "is not a positive whole number"),
        (["emulator", "--port", "x"], 2, "is not a TCP port"),
        (["no-such-command"], 2, "invalid choice"),
    ]


def test_each_command_names_the_problem_in_one_line(aws, capsys, files, tmp_path):
    for argv, expected_code, says in bad_inputs(files, tmp_path):
        code, err = run(capsys, *argv)
        line = the_error(err)
        assert (code, says in line) == (expected_code, True), f"churn {' '.join(argv)} -> {code}: {err}"


def test_an_invalid_customer_is_named_field_by_field(aws, champion, capsys):
    code, err = run(capsys, "predict", "--json", json.dumps({**json.loads(GOOD_ROW), "tenure": "lots"}))
    assert code == 2 and "tenure: is not a number" in the_error(err)


def test_no_champion_yet_says_how_to_get_one(aws, capsys):
    code, err = run(capsys, "predict", "--json", GOOD_ROW)
    assert code == 1 and "promote" in the_error(err)


def test_a_missing_setting_is_named(aws, capsys, monkeypatch):
    from churnguard.settings import get_settings

    monkeypatch.delenv("REGISTRY_TABLE")
    get_settings.cache_clear()
    code, err = run(capsys, "models", "list")
    assert code == 2 and the_error(err) == "error: set REGISTRY_TABLE (the model bucket and registry table)"


def test_without_a_region_the_cli_uses_us_east_1(aws, capsys, monkeypatch):
    import boto3

    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    assert main(["models", "list", "--json"]) == 0  # NoRegionError before
    assert json.loads(capsys.readouterr().out) == {"champion": None, "versions": []}


@pytest.mark.parametrize("command", ["serve", "demo", "emulator"])
def test_a_busy_port_is_refused_before_anything_starts(aws, capsys, command):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        started = time.monotonic()
        code, err = run(capsys, command, "--port", str(port))
    assert code == 2 and time.monotonic() - started < 5  # the demo did not train first
    line = the_error(err)
    assert f"port {port} on 127.0.0.1 is already in use" in line and "--port 8123" in line


def test_an_unexpected_error_is_one_line_and_debug_shows_the_traceback(aws, capsys, monkeypatch):
    from churnguard.entrypoints import cli

    def broken(a):
        raise RuntimeError("wires crossed")

    monkeypatch.setattr(cli, "cmd_models_list", broken)
    code, err = run(capsys, "models", "list")
    assert code == 1
    assert the_error(err) == (
        "error: unexpected RuntimeError: wires crossed (a bug: run again with --debug for the traceback, and report it)"
    )
    with pytest.raises(RuntimeError):
        main(["--debug", "models", "list"])


def test_version_and_help(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("churn 0.1.0 (Python ")
    assert main(["--help"]) == 0
    assert "churn emulator" in capsys.readouterr().out


# ----- the process itself ---------------------------------------------------------------------------
def churn(args, env=None, **kw):
    return subprocess.Popen(
        CHURN + args, env={**os.environ, **(env or {})}, stderr=subprocess.PIPE, text=True, cwd=ROOT, **kw
    )


def test_a_reader_that_stops_early_ends_the_command_quietly(tmp_path):
    """`churn schema infer ... | head -1`: the reader closes the pipe before churn writes."""
    data = tmp_path / "c.csv"
    data.write_bytes(synth_csv_bytes(300))
    p = churn(["schema", "infer", "--data", str(data), "--target", "Churn"], stdout=subprocess.PIPE)
    p.stdout.close()  # before the child has even imported pandas
    err = p.stderr.read()
    assert p.wait(timeout=120) == 141
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception ignored" not in err, err


def test_predict_into_a_closed_pipe_ends_quietly(tmp_path, trained, monkeypatch):
    from churnguard.bootstrap import build_services
    from churnguard.local.emulator import Emulator
    from churnguard.settings import Settings

    with Emulator(ROOT / "template.yaml") as emu:
        for k, v in emu.env.items():
            monkeypatch.setenv(k, v)
        register(build_services(Settings.from_env()), trained, "v1", promote=True)
        rows = tmp_path / "rows.json"
        rows.write_text(json.dumps([json.loads(GOOD_ROW)] * 50))
        p = churn(["predict", "--file", str(rows)], env=emu.env, stdout=subprocess.PIPE)
        p.stdout.close()
        err = p.stderr.read()
        assert p.wait(timeout=120) == 141
    assert "Traceback" not in err and "Exception ignored" not in err, err


def test_missing_credentials_are_one_line_with_the_fix(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        HOME=str(tmp_path),
        AWS_CONFIG_FILE=str(tmp_path / "none"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        AWS_EC2_METADATA_DISABLED="true",
        MODEL_BUCKET="b",
        REGISTRY_TABLE="t",
    )
    p = subprocess.run(CHURN + ["models", "list"], env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == [
        "error: no AWS credentials found: for a local backend run `churn emulator` and paste its export lines; "
        "for AWS set AWS_PROFILE (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
    ]
