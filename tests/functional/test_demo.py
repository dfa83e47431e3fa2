"""`make demo`'s command on a free port: emulator, training, promotion, a real HTTP prediction."""

import json
import re
import subprocess
import sys

from churnguard.local.emulator import free_port
from tests.conftest import ROOT


def test_demo_serves_a_prediction_over_http():
    port = free_port()
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "churnguard",
            "demo",
            "--no-serve",
            "--rows",
            "1500",
            "--port",
            str(port),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert p.returncode == 0, p.stderr
    assert f"first prediction from http://127.0.0.1:{port}/predict" in p.stdout
    body = json.loads(re.search(r"^\{.*?^\}", p.stdout, re.S | re.M).group(0))
    assert 0 < body["churn_probability"] < 1
    assert body["reasons"] and body["model_version"].startswith("v")
    assert "emulator stopped" in p.stdout
