"""The pre-traffic check of a PredictFunction code deploy: before CodeDeploy shifts any traffic to the new
version, it must answer a fixed set of customers exactly as the live version does.

A code deploy does not change the model, so for the same champion the same customer must get the same
probability, decision, risk level and reasons from both versions; the new version must also be healthy
and still refuse a bad request by name. The customers carry no id: the check's requests are not
assigned to a canary and join no outcome (they are logged like any other request without an id).

    result = verify_new_version(new.invoke, live.invoke, customers)
    result["passed"], result["checks"]
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

# A Lambda invocation: the API Gateway event in, the function's response (statusCode, body) out.
Invoke = Callable[[Mapping[str, Any]], Mapping[str, Any]]
# The same model must give the same probability to the last bit; a little room for float formatting.
TOLERANCE = 1e-9


def api_event(method: str, path: str, body: Any = None) -> dict[str, Any]:
    """A REST API (aws-proxy) request event, as API Gateway hands it to the predict function."""
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": {"Content-Type": "application/json", "User-Agent": "churnguard-deploy-check"},
        "multiValueHeaders": {"Content-Type": ["application/json"]},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": path,
            "httpMethod": method,
            "path": path,
            "stage": "deploy-check",
            "requestId": "deploy-check",
            "identity": {"sourceIp": "127.0.0.1", "userAgent": "churnguard-deploy-check"},
        },
        "body": None if body is None else json.dumps(body),
        "isBase64Encoded": False,
    }


def _call(invoke: Invoke, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    response = invoke(api_event(method, path, body))
    status = int(response.get("statusCode") or 0)
    try:
        return status, json.loads(response.get("body") or "null")
    except ValueError:
        return status, response.get("body")


def _same_answer(a: Mapping[str, Any], b: Mapping[str, Any]) -> str | None:
    """What differs between two answers of the same model version, or None."""
    pa, pb = a.get("churn_probability"), b.get("churn_probability")
    if (
        not isinstance(pa, (int, float))
        or not isinstance(pb, (int, float))
        or not math.isclose(pa, pb, abs_tol=TOLERANCE)
    ):
        return f"churn_probability {pa} against {pb}"
    for field in ("will_churn", "risk_level"):
        if a.get(field) != b.get(field):
            return f"{field} {a.get(field)!r} against {b.get(field)!r}"
    features = [[r.get("feature") for r in x.get("reasons") or []] for x in (a, b)]
    if features[0] != features[1]:
        return f"reasons {features[0]} against {features[1]}"
    return None


def verify_new_version(new: Invoke, live: Invoke, customers: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Health, a refused bad request, and each customer answered by ``new`` as by ``live``."""
    checks: list[dict[str, Any]] = []

    def check(name: str, ok: bool, detail: str) -> None:
        checks.append({"name": name, "passed": ok, "detail": detail})

    status, body = _call(new, "GET", "/health")
    check("health", status == 200, f"GET /health answered {status}: {str(body)[:300]}")
    bad = {**dict(customers[0]), "tenure": "not a number"} if customers else {"tenure": "not a number"}
    status, body = _call(new, "POST", "/predict", bad)
    named = isinstance(body, Mapping) and any(p.get("field") == "tenure" for p in body.get("problems") or [])
    check("bad request refused", status == 422 and named, f"a bad tenure answered {status}: {str(body)[:300]}")
    for i, customer in enumerate(customers):
        for attempt in range(2):  # a promotion between the two calls changes the model: ask again once
            s_new, a_new = _call(new, "POST", "/predict", customer)
            s_live, a_live = _call(live, "POST", "/predict", customer)
            if s_new != 200 or s_live != 200:
                check(f"customer {i}", False, f"answered {s_new} (new) and {s_live} (live): {str(a_new)[:300]}")
                break
            if a_new.get("model_version") != a_live.get("model_version") and attempt == 0:
                continue
            if a_new.get("model_version") != a_live.get("model_version"):
                check(
                    f"customer {i}", False, f"model {a_new.get('model_version')} against {a_live.get('model_version')}"
                )
                break
            diff = _same_answer(a_new, a_live)
            check(
                f"customer {i}",
                diff is None,
                diff or f"the same answer from {a_new.get('model_version')}: p={a_new.get('churn_probability')}",
            )
            break
    return {"passed": bool(checks) and all(c["passed"] for c in checks), "checks": checks}
