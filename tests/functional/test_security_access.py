"""What the stack exposes and how it protects data, read from template.yaml itself (and from the
template as SAM transforms it, which is what API Gateway receives)."""

import json

import pytest

from churnguard.local.template import load_template
from tests.conftest import ROOT

# Every public route. Adding one is a decision: update this set in the same commit.
PUBLIC_ROUTES = {
    ("POST", "/predict"),
    ("POST", "/predict/batch"),
    ("GET", "/health"),
    ("GET", "/model"),
    ("GET", "/docs"),
    ("GET", "/openapi.json"),
    ("POST", "/feedback"),
    ("GET", "/customers/{customer_id}/score"),
    ("POST", "/customers/{customer_id}/predict"),
    # The console's read-only dashboard routes (ConsoleFunction), behind the same API key.
    ("GET", "/dashboard/models"),
    ("GET", "/dashboard/call-list"),
    ("GET", "/dashboard/customers/{customer_id}"),
    ("GET", "/dashboard/drift/latest"),
    ("GET", "/dashboard/evaluations/latest"),
    ("GET", "/dashboard/canary"),
    ("GET", "/dashboard/runs"),
}
# The console's pages for people (ConsoleApi): no API key; the function signs people in (Cognito user pool).
CONSOLE_ROUTES = {
    ("GET", "/console"),
    ("GET", "/console/{page}"),
    ("POST", "/console/sign-in"),
    ("POST", "/console/new-password"),
    ("POST", "/console/sign-out"),
}
OPEN_ROUTES = {("GET", "/health")}
ADMIN_WORDS = ("promote", "rollback", "retrain", "train", "forget", "erase", "admin", "registry", "evaluate")


@pytest.fixture(scope="module")
def template():
    return load_template(ROOT / "template.yaml")


def api_events(template, api="ChurnApi"):
    for name, res in template["Resources"].items():
        if res["Type"] != "AWS::Serverless::Function":
            continue
        for ev_name, ev in (res["Properties"].get("Events") or {}).items():
            if ev["Type"] in ("Api", "HttpApi") and ev["Properties"].get("RestApiId") == {"Ref": api}:
                yield name, ev_name, ev["Properties"]


def test_every_api_event_belongs_to_a_known_api(template):
    apis = {"ChurnApi", "ConsoleApi"}
    for name, res in template["Resources"].items():
        for ev in (res.get("Properties", {}).get("Events") or {}).values():
            if ev["Type"] in ("Api", "HttpApi"):
                assert ev["Properties"].get("RestApiId") in [{"Ref": a} for a in apis], name


def test_public_routes_are_exactly_the_known_set(template):
    routes = {(p["Method"].upper(), p["Path"]) for _, _, p in api_events(template)}
    assert routes == PUBLIC_ROUTES
    for _, path in routes:
        assert not any(w in path.lower() for w in ADMIN_WORDS), f"{path} looks like an admin action"
    dashboard = {(m, p) for m, p in routes if p.startswith("/dashboard/")}
    assert dashboard and {m for m, _ in dashboard} == {"GET"}  # the dashboard only reads


def test_console_pages_are_exactly_the_known_set_and_need_a_user_pool(template):
    routes = {(p["Method"].upper(), p["Path"]) for _, _, p in api_events(template, "ConsoleApi")}
    assert routes == CONSOLE_ROUTES
    for _, path in routes:
        assert not any(w in path.lower() for w in ADMIN_WORDS), f"{path} looks like an admin action"
    fn = template["Resources"]["ConsoleFunction"]["Properties"]
    assert fn["Environment"]["Variables"]["CONSOLE_USER_POOL_CLIENT_ID"] == {"Ref": "ConsoleUserPoolClient"}
    pool = template["Resources"]["ConsoleUserPool"]["Properties"]
    assert pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True  # no self sign-up
    assert pool["Policies"]["PasswordPolicy"]["MinimumLength"] >= 12
    client = template["Resources"]["ConsoleUserPoolClient"]["Properties"]
    assert client["GenerateSecret"] is False and "ALLOW_USER_PASSWORD_AUTH" in client["ExplicitAuthFlows"]
    assert client["PreventUserExistenceErrors"] == "ENABLED"


def test_the_console_function_only_reads(template):
    fn = template["Resources"]["ConsoleFunction"]
    actions = set()
    for statement in _statements(fn):
        acts = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        actions |= set(acts)
    assert actions and all(a.split(":")[1].startswith(("Get", "List", "Query", "Scan")) for a in actions), actions
    templates = {list(p)[0] for p in fn["Properties"]["Policies"] if isinstance(p, dict) and "Statement" not in p}
    assert templates <= {"S3ReadPolicy", "AWSSecretsManagerGetSecretValuePolicy"}


def test_only_the_predict_and_console_functions_are_behind_the_api(template):
    assert {fn for fn, _, _ in api_events(template)} == {"PredictFunction", "ConsoleFunction"}
    assert {fn for fn, _, _ in api_events(template, "ConsoleApi")} == {"ConsoleFunction"}
    for name in ("PromoteFunction", "TrainFunction", "EvaluateFunction"):
        if name in template["Resources"]:
            events = template["Resources"][name]["Properties"].get("Events") or {}
            assert not [e for e in events.values() if e["Type"] in ("Api", "HttpApi", "FunctionUrl")]
            assert "FunctionUrlConfig" not in template["Resources"][name]["Properties"]


def test_api_requires_a_key_with_a_usage_plan_and_iam_is_a_parameter(template):
    api = template["Resources"]["ChurnApi"]["Properties"]
    auth = api["Auth"]
    assert auth["ApiKeyRequired"] is True
    assert auth["DefaultAuthorizer"] == {"Ref": "ApiIamAuth"}
    assert template["Parameters"]["ApiIamAuth"]["AllowedValues"] == ["NONE", "AWS_IAM"]
    plan = auth["UsagePlan"]
    assert plan["CreateUsagePlan"] == "PER_API"
    assert set(plan["Throttle"]) == {"RateLimit", "BurstLimit"} and plan["Quota"]["Period"] == "DAY"
    for _, ev, props in api_events(template):
        opened = props.get("Auth", {}).get("ApiKeyRequired") is False
        assert opened == ((props["Method"].upper(), props["Path"]) in OPEN_ROUTES), ev


@pytest.mark.parametrize("iam", ["NONE", "AWS_IAM"])
def test_transformed_api_enforces_key_and_optional_iam_on_every_method_but_health(template, iam, monkeypatch):
    """What API Gateway gets: SAM's generated OpenAPI body, with the deploy-time parameter."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    from samtranslator.translator.transform import transform

    class NoManagedPolicies:
        def load(self):
            return {}

    packaged = json.loads(json.dumps(template))
    for res in packaged["Resources"].values():  # as `sam package` leaves it: code already in S3
        for key in ("CodeUri", "ContentUri", "DefinitionUri"):
            if isinstance(res.get("Properties", {}).get(key), str):
                res["Properties"][key] = f"s3://artifacts/{key.lower()}"
    out = transform(packaged, {"ApiIamAuth": iam}, NoManagedPolicies())
    body = out["Resources"]["ChurnApi"]["Properties"]["Body"]
    methods = {(m.upper(), path): op for path, ops in body["paths"].items() for m, op in ops.items()}
    assert set(methods) == PUBLIC_ROUTES
    for route, op in methods.items():
        schemes = {k for s in op.get("security", []) for k in s}
        if route in OPEN_ROUTES:
            assert schemes <= {"NONE"}, route
        else:
            assert "api_key" in schemes, route
            assert ("AWS_IAM" in schemes) == (iam == "AWS_IAM"), route
            # API Gateway calls the function with its own permission, never the caller's credentials.
            assert "credentials" not in op["x-amazon-apigateway-integration"], route
    plans = [r for r in out["Resources"].values() if r["Type"] == "AWS::ApiGateway::UsagePlan"]
    assert len(plans) == 1 and plans[0]["Properties"]["Quota"]["Period"] == "DAY"


def test_buckets_are_encrypted_private_tls_only_and_models_versioned(template):
    res = template["Resources"]
    buckets = [n for n, r in res.items() if r["Type"] == "AWS::S3::Bucket"]
    assert "ModelBucket" in buckets
    policies = {r["Properties"]["Bucket"]["Ref"]: r for r in res.values() if r["Type"] == "AWS::S3::BucketPolicy"}
    for name in buckets:
        p = res[name]["Properties"]
        assert p["BucketEncryption"]["ServerSideEncryptionConfiguration"], name
        assert all(
            p["PublicAccessBlockConfiguration"][k] is True
            for k in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")
        ), name
        deny = [
            s
            for s in policies[name]["Properties"]["PolicyDocument"]["Statement"]
            if s["Effect"] == "Deny" and s["Condition"]["Bool"]["aws:SecureTransport"] == "false"
        ]
        assert deny, f"{name} must refuse plain HTTP"
    assert res["ModelBucket"]["Properties"]["VersioningConfiguration"]["Status"] == "Enabled"


def test_prediction_logs_expire_after_a_parameter_defaulting_to_90_days(template):
    rules = template["Resources"]["ModelBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    logs = [r for r in rules if r.get("Prefix") == "predictions/"]
    assert len(logs) == 1 and logs[0]["Status"] == "Enabled"
    assert logs[0]["ExpirationInDays"] == {"Ref": "PredictionLogRetentionDays"}
    assert template["Parameters"]["PredictionLogRetentionDays"]["Default"] == 90


def test_tables_have_point_in_time_recovery_and_encryption(template):
    tables = {n: r["Properties"] for n, r in template["Resources"].items() if r["Type"] == "AWS::DynamoDB::Table"}
    assert {"RegistryTable", "OutcomesTable"} <= set(tables)
    for name, p in tables.items():
        assert p["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True, name
        assert p["SSESpecification"]["SSEEnabled"] is True, name


def test_hash_key_is_a_generated_secret_not_an_environment_value(template):
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert "CUSTOMER_ID_HASH_KEY" not in env
    assert env["CUSTOMER_ID_HASH_KEY_SECRET"] == {"Ref": "CustomerIdHashKeySecret"}
    secret = template["Resources"]["CustomerIdHashKeySecret"]
    assert secret["Type"] == "AWS::SecretsManager::Secret" and "GenerateSecretString" in secret["Properties"]


def _statements(fn):
    for pol in fn["Properties"].get("Policies", []):
        if isinstance(pol, dict) and "Statement" in pol:
            yield from pol["Statement"]


def test_predict_reads_only_model_objects_and_registry_items(template):
    fn = template["Resources"]["PredictFunction"]
    names = {list(p)[0] for p in fn["Properties"]["Policies"] if isinstance(p, dict)}
    assert not names & {"S3ReadPolicy", "S3CrudPolicy", "S3FullAccessPolicy", "DynamoDBCrudPolicy"}
    s3 = [
        s
        for s in _statements(fn)
        if any(str(a).startswith("s3:") for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]]))
    ]
    for s in s3:
        actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
        assert set(actions) <= {"s3:GetObject", "s3:ListBucket"}
        if "s3:GetObject" in actions:
            assert s["Resource"] == {"Fn::Sub": "${ModelBucket.Arn}/models/*"}


def test_the_integrity_alarm_watches_the_metric_the_provider_emits(template):
    alarm = template["Resources"]["ArtifactIntegrityFailureAlarm"]["Properties"]
    assert alarm["MetricName"] == "ArtifactIntegrityFailure" and alarm["Namespace"] == "ChurnGuard"
    assert alarm["Threshold"] == 1 and alarm["AlarmActions"]
    source = (ROOT / "functions" / "predict" / "app.py").read_text()
    assert '"ArtifactIntegrityFailure"' in source


def test_no_function_holds_the_whole_model_bucket(template):
    """Every function reaches the model bucket through prefix-scoped statements (models/, data/,
    predictions/, reports/...), never through a bucket-wide SAM policy template."""
    wide = {"S3ReadPolicy", "S3WritePolicy", "S3CrudPolicy", "S3FullAccessPolicy"}
    offenders = []
    for name, res in template["Resources"].items():
        if res.get("Type") != "AWS::Serverless::Function":
            continue
        for policy in res["Properties"].get("Policies", []):
            if isinstance(policy, dict):
                for kind, args in policy.items():
                    if kind in wide and args.get("BucketName") == {"Ref": "ModelBucket"}:
                        offenders.append(f"{name}: {kind}")
    assert offenders == []
