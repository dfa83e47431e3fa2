"""The pre-traffic check of a PredictFunction code deploy (services/deploy_check.py) against the real predict
handler under moto: the same code passes, code that changes an answer, breaks health or crashes fails.

Lambda invocations are the check's port (``Invoke``); here each "version" is the predict handler in process
(moto's Lambda would need Docker). The deployed hook, through Lambda, is exercised in tests/e2e."""

import json

import pytest

from churnguard.services.deploy_check import verify_new_version
from tests.conftest import ROOT, load_function

CUSTOMERS = json.loads((ROOT / "functions" / "deploy_check" / "customers.json").read_text())["customers"]


@pytest.fixture
def live(champion, lambda_context):
    handler = load_function("predict").handler
    return lambda event: handler(dict(event), lambda_context)


def test_the_same_code_passes(live):
    result = verify_new_version(live, live, CUSTOMERS)
    assert result["passed"], result["checks"]
    names = [c["name"] for c in result["checks"]]
    assert names == ["health", "bad request refused", *[f"customer {i}" for i in range(len(CUSTOMERS))]]


def test_code_that_changes_an_answer_fails(live):
    def rounding(event):
        response = live(event)
        if event["path"] == "/predict" and response["statusCode"] == 200:
            body = json.loads(response["body"])
            body["churn_probability"] = round(body["churn_probability"], 2)
            response = {**response, "body": json.dumps(body)}
        return response

    result = verify_new_version(rounding, live, CUSTOMERS)
    assert not result["passed"]
    assert any(not c["passed"] and "churn_probability" in c["detail"] for c in result["checks"])


def test_a_version_that_crashes_or_accepts_anything_fails(live):
    def crashing(event):
        return {"statusCode": 500, "body": json.dumps({"function_error": "ImportError: no module named fastapi"})}

    result = verify_new_version(crashing, live, CUSTOMERS)
    assert not result["passed"] and not result["checks"][0]["passed"]

    def lenient(event):
        response = live(event)
        return {"statusCode": 200, "body": response["body"]} if response["statusCode"] == 422 else response

    result = verify_new_version(lenient, live, CUSTOMERS)
    assert [c["name"] for c in result["checks"] if not c["passed"]] == ["bad request refused"]
