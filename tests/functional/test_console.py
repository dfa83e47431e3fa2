"""The console's read models, dashboard routes, pages and sign-in, under moto with the template's resources.

One module-wide stack: a champion trained on generated customers, then the demo's console step
(local/console_demo.py) through the platform's own use cases: a challenger evaluated and on a
canary, a batch job, a month of prediction log with outcomes, and a drift check. The expectations
are read back from the stores themselves (score files, registry, reports), not from the console.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from fastapi.testclient import TestClient

from churnguard.local.emulator import FAKE_CREDENTIALS
from churnguard.local.template import create_resources, load_template
from tests.conftest import FAST, ROOT, load_event, synth_csv_bytes


@pytest.fixture(scope="module")
def stack() -> Iterator[dict[str, Any]]:
    from moto import mock_aws

    from churnguard.bootstrap import build_services
    from churnguard.domain.schema import Schema
    from churnguard.domain.training import TrainingConfig
    from churnguard.local.console_demo import seed_console_data
    from churnguard.services.lifecycle import train_and_register
    from churnguard.settings import Settings, get_settings

    with pytest.MonkeyPatch.context() as mp, mock_aws():
        for k, v in FAKE_CREDENTIALS.items():
            mp.setenv(k, v)
        mp.delenv("AWS_ENDPOINT_URL", raising=False)
        env = create_resources(load_template(ROOT / "template.yaml"), boto3.client("s3"), boto3.client("dynamodb"))
        for k, v in env.items():
            mp.setenv(k, v)
        get_settings.cache_clear()
        services = build_services(Settings.from_env())
        champion = train_and_register(
            synth_csv_bytes(1500), Schema.default(), TrainingConfig.from_dict(FAST), services.store,
            services.registry, source="synthetic",
        )["version"]  # fmt: skip
        services.registry.promote(champion)
        seeded = seed_console_data(services, rows=1500, say=lambda _msg: None)
        yield {"env": env, "services": services, "champion": champion, **seeded}
        get_settings.cache_clear()


@pytest.fixture(scope="module")
def console_app(stack) -> Any:
    from churnguard.entrypoints.api import build_console_app

    return build_console_app(stack["services"], allow_anonymous=True)


@pytest.fixture(scope="module")
def client(console_app) -> TestClient:
    return TestClient(console_app, base_url="https://testserver")


def _score_rows(stack) -> list[dict[str, str]]:
    """The batch job's score files, read straight from the bucket."""
    s3 = boto3.client("s3")
    bucket = stack["env"]["BATCH_BUCKET"]
    rows: list[dict[str, str]] = []
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=f"scores/{stack['job_id']}/scores/")
    for obj in listing["Contents"]:
        body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read().decode()
        rows.extend(csv.DictReader(io.StringIO(body)))
    return rows


def _all_entries(client, query: str = "") -> list[dict[str, Any]]:
    out, page = [], 1
    while True:
        body = client.get(f"/dashboard/call-list?size=200&page={page}{query}").json()
        out.extend(body["entries"])
        if page >= body["pages"]:
            return out
        page += 1


def test_the_dashboard_routes_are_the_ones_the_template_exposes(console_app):
    template = load_template(ROOT / "template.yaml")
    events = template["Resources"]["ConsoleFunction"]["Properties"]["Events"].values()
    declared = {e["Properties"]["Path"] for e in events if e["Properties"]["RestApiId"] == {"Ref": "ChurnApi"}}
    served = {path for path in console_app.openapi()["paths"] if path.startswith("/dashboard/")}
    assert served == declared


def test_the_call_list_is_the_jobs_at_risk_customers_most_likely_first(stack, client):
    scored = _score_rows(stack)
    at_risk = {r["customerID"]: r for r in scored if r["risk_level"] in ("high", "medium")}
    body = client.get("/dashboard/call-list").json()
    assert body["job"]["job_id"] == stack["job_id"] and body["rows_scored"] == len(scored)
    assert body["total"] == len(at_risk) and sum(body["score_distribution"]["counts"]) == len(scored)
    entries = _all_entries(client)
    assert {e["customer_id"] for e in entries} == set(at_risk)
    probabilities = [e["churn_probability"] for e in entries]
    assert probabilities == sorted(probabilities, reverse=True)
    for e in entries[:50]:
        row = at_risk[e["customer_id"]]
        assert e["churn_probability"] == float(row["churn_probability"]) and e["risk_level"] == row["risk_level"]
        assert e["reasons"] == json.loads(row["reasons"])  # the job computed reasons for medium and high
        assert e["recommended_action"].startswith(("Contact within 7 days", "Add to the next retention campaign"))


def test_filters_select_by_risk_level_and_reason(client):
    high = _all_entries(client, "&risk=high")
    assert high and {e["risk_level"] for e in high} == {"high"}
    reason = next(iter(client.get("/dashboard/call-list").json()["reasons"]))
    by_reason = _all_entries(client, f"&reason={reason}")
    assert by_reason and all(
        any(r["feature"] == reason and r["effect"] == "increases risk" for r in e["reasons"]) for e in by_reason
    )
    assert len(by_reason) < len(_all_entries(client))
    bad = client.get("/dashboard/call-list?risk=low")
    assert bad.status_code == 422 and bad.json()["problems"][0]["field"].startswith("query")


def test_the_export_holds_every_filtered_customer_in_order(client):
    high = _all_entries(client, "&risk=high")
    r = client.get("/console/call-list.csv?risk=high")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"].startswith("attachment; filename=")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["customer_id"] for row in rows] == [e["customer_id"] for e in high]
    assert [row["rank"] for row in rows] == [str(i) for i in range(1, len(high) + 1)]


def test_a_customer_shows_the_stored_score_reasons_action_and_logged_history(stack, client):
    entry = client.get("/dashboard/call-list?risk=high&size=1").json()["entries"][0]
    body = client.get(f"/dashboard/customers/{entry['customer_id']}").json()
    latest = body["latest"]
    assert latest["job_id"] == stack["job_id"] and latest["reasons"] == entry["reasons"]
    assert latest["recommended_action"] == entry["recommended_action"]
    assert body["history"] and all(h["model_version"] for h in body["history"])  # the demo logged every customer
    assert client.get("/dashboard/customers/NOBODY-0000").json()["latest"] is None
    assert client.get("/dashboard/customers/" + "x" * 200).status_code == 422


def test_models_reports_canary_and_runs(stack, client):
    models = client.get("/dashboard/models").json()
    registry = stack["services"].registry
    assert models["champion"]["version"] == stack["champion"]
    assert models["champion"]["metrics"] == registry.get(stack["champion"]).metrics
    assert models["canary"]["version"] == stack["challenger"]
    drift = client.get("/dashboard/drift/latest").json()
    assert drift["decision"] == stack["drift"] and "tenure" in [f["name"] for f in drift["features"] if f["drifted"]]
    evaluation = client.get("/dashboard/evaluations/latest").json()
    assert evaluation["version"] == stack["challenger"] and evaluation["passed"] == stack["evaluation"]["passed"]
    canary = client.get("/dashboard/canary").json()
    variants = canary["comparison"]["variants"]
    assert set(variants) == {"champion", "canary"} and variants["canary"]["model_versions"] == [stack["challenger"]]
    assert canary["comparison"]["tests"]["canary"]["p_value"] is not None
    assert sum(p["n"] for p in canary["over_time"]["canary"]) == variants["canary"]["n"]
    runs = {r["version"]: r for r in client.get("/dashboard/runs").json()["runs"]}
    assert runs[stack["champion"]]["outcome"] == "serving"
    assert runs[stack["challenger"]]["outcome"] == "pending"


def test_runs_include_the_state_machines_executions(stack, console_app):
    """With the retraining state machine given, a run that never registered a model is listed too."""
    from dataclasses import replace

    from churnguard.adapters.state_machines import StepFunctionsRetrainLauncher
    from churnguard.entrypoints.api import build_console_app

    sfn = boto3.client("stepfunctions")
    arn = sfn.create_state_machine(
        name="retrain",
        definition=json.dumps({"StartAt": "Wait", "States": {"Wait": {"Type": "Pass", "End": True}}}),
        roleArn="arn:aws:iam::123456789012:role/sfn",
    )["stateMachineArn"]
    sfn.start_execution(stateMachineArn=arn, name="drift-20260501-030000-ab12cd", input="{}")
    services = stack["services"]
    settings = replace(services.settings, loop=replace(services.settings.loop, retrain_state_machine_arn=arn))
    app = build_console_app(replace(services, settings=settings), allow_anonymous=True)
    runs = TestClient(app).get("/dashboard/runs").json()
    assert runs["state_machine"] is True
    by_execution = {r["execution"]: r for r in runs["runs"]}
    assert by_execution["drift-20260501-030000-ab12cd"]["version"] is None
    assert by_execution["drift-20260501-030000-ab12cd"]["execution_status"] in ("RUNNING", "SUCCEEDED")
    assert StepFunctionsRetrainLauncher(arn, sfn).recent()[0]["name"] == "drift-20260501-030000-ab12cd"


@pytest.mark.parametrize("page", ["call-list", "customers", "models", "drift", "canary", "retraining"])
def test_every_page_renders_with_safe_headers(client, page):
    r = client.get(f"/console/{page}")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert r.headers["cache-control"] == "no-store" and "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert '<a class="skip" href="#main">' in r.text and "aria-current=page" in r.text


def test_pages_escape_what_people_type_and_errors_are_pages(client):
    r = client.get("/console/customers", params={"customer_id": "<script>alert(1)</script>"})
    assert r.status_code == 404 and "<script>alert(1)" not in r.text and "&lt;script&gt;" in r.text
    r = client.get("/console/call-list?page=0")
    assert r.status_code == 422 and r.headers["content-type"].startswith("text/html") and "invalid request" in r.text


def test_the_console_function_answers_through_mangum(stack, monkeypatch, lambda_context):
    from tests.conftest import load_function

    monkeypatch.setenv("CONSOLE_USER_POOL_CLIENT_ID", "client-for-this-test")
    fn = load_function("console")
    out = fn.handler(load_event("dashboard_models"), lambda_context)
    assert out["statusCode"] == 200 and json.loads(out["body"])["champion"]["version"] == stack["champion"]
    page = fn.handler(load_event("console_call_list"), lambda_context)
    assert page["statusCode"] == 303 and page["headers"]["location"] == "sign-in?next=call-list"


def test_the_console_refuses_to_start_without_sign_in_unless_local(stack):
    from churnguard.domain.errors import ConfigurationError
    from churnguard.entrypoints.api import build_console_app

    with pytest.raises(ConfigurationError, match="CONSOLE_USER_POOL_CLIENT_ID"):
        build_console_app(stack["services"])


# ----- people signing in (moto's Cognito user pool, made as the template declares it) --------------------------
@pytest.fixture(scope="module")
def signed_console(stack) -> dict[str, Any]:
    from dataclasses import replace

    from churnguard.bootstrap import build_services
    from churnguard.entrypoints.api import build_console_app

    props = load_template(ROOT / "template.yaml")["Resources"]
    pool_props, client_props = props["ConsoleUserPool"]["Properties"], props["ConsoleUserPoolClient"]["Properties"]
    idp = boto3.client("cognito-idp")
    pool = idp.create_user_pool(
        PoolName="console", Policies=pool_props["Policies"], AdminCreateUserConfig=pool_props["AdminCreateUserConfig"]
    )["UserPool"]["Id"]
    client_id = idp.create_user_pool_client(
        UserPoolId=pool,
        ClientName=client_props["ClientName"],
        GenerateSecret=client_props["GenerateSecret"],
        ExplicitAuthFlows=client_props["ExplicitAuthFlows"],
    )["UserPoolClient"]["ClientId"]
    idp.admin_create_user(UserPoolId=pool, Username="ana", TemporaryPassword="Temporary-Passw0rd")
    settings = stack["services"].settings
    settings = replace(settings, console=replace(settings.console, user_pool_client_id=client_id))
    app = build_console_app(build_services(settings))
    return {"app": app}


def test_pages_need_a_signed_in_person(signed_console):
    c = TestClient(signed_console["app"], base_url="https://testserver", follow_redirects=False)
    r = c.get("/console/models")
    assert r.status_code == 303 and r.headers["location"] == "sign-in?next=models"
    c.cookies.set("churnguard_console", "forged-token")
    assert c.get("/console/models").status_code == 303
    assert c.get("/console/call-list.csv").status_code == 303  # the export too
    assert c.get("/dashboard/models").status_code == 200  # machines: the API key at API Gateway guards these


def test_a_wrong_password_is_refused_with_a_clear_message(signed_console):
    c = TestClient(signed_console["app"], base_url="https://testserver", follow_redirects=False)
    r = c.post("/console/sign-in", data={"username": "ana", "password": "wrong-Passw0rd", "next": "models"})
    assert r.status_code == 401 and "Sign-in refused: wrong user name or password." in r.text
    assert "set-cookie" not in r.headers and 'value="ana"' in r.text  # the name is kept for the next try
    r = c.post("/console/sign-in", data={"username": "nobody", "password": "Whatever-Passw0rd", "next": "models"})
    assert r.status_code == 401 and "wrong user name or password" in r.text  # no hint that the user does not exist


def test_first_sign_in_sets_a_password_then_the_session_opens_the_pages(signed_console):
    c = TestClient(signed_console["app"], base_url="https://testserver", follow_redirects=False)
    r = c.post("/console/sign-in", data={"username": "ana", "password": "Temporary-Passw0rd", "next": "models"})
    assert r.status_code == 200 and "Choose a new password" in r.text
    session = r.text.split('name="session" value="')[1].split('"')[0]
    r = c.post(
        "/console/new-password",
        data={"username": "ana", "session": session, "new_password": "Chosen-Passw0rd-2026", "next": "models"},
    )
    assert r.status_code == 303 and r.headers["location"] == "models"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=strict" in cookie
    page = c.get("/console/models")
    assert page.status_code == 200 and "Signed in as ana" in page.text
    r = c.post(
        "/console/sign-in", data={"username": "ana", "password": "Chosen-Passw0rd-2026", "next": "//evil.example"}
    )
    assert r.status_code == 303 and r.headers["location"] == "call-list"  # never a redirect out of the console
    out = c.post("/console/sign-out")
    assert out.status_code == 303 and 'churnguard_console=""' in out.headers["set-cookie"]


def test_churn_console_without_sign_in_serves_only_loopback(stack, monkeypatch, capsys):
    from churnguard.entrypoints.cli import main
    from churnguard.settings import get_settings

    monkeypatch.delenv("CONSOLE_USER_POOL_CLIENT_ID", raising=False)
    get_settings.cache_clear()
    assert main(["console", "--host", "0.0.0.0"]) == 2
    assert "serves only 127.0.0.1" in capsys.readouterr().err
