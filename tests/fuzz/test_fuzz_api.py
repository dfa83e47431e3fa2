"""Property-based fuzzing of the API from its own OpenAPI document (schemathesis, in process).

The app is the real one (bootstrap.build_api: champion from the registry, feedback into the
outcomes table, customer scores) over moto. Schemathesis generates valid and invalid requests
for every operation; no answer may be a 5xx, and every 4xx must say what is wrong.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tests.functional.test_security_degradation import register

EXAMPLES_PER_OPERATION = 200
SEEN: Counter = Counter()


@pytest.fixture
def api_app(aws, services, trained):
    from churnguard.entrypoints.api import build_app

    register(services, trained, "v1", promote=True)
    return build_app(services)


def operations(app):
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    return [r.ok() for r in schema.get_all_operations()]


def names_the_problem(body: dict) -> bool:
    """A 4xx body names the problem: a field with what is wrong, or a specific detail."""
    if body.get("problems"):
        return all(isinstance(p.get("field"), str) and p.get("problem") for p in body["problems"])
    detail = body.get("detail")
    if isinstance(detail, list):
        return all(d.get("msg") and d.get("loc") for d in detail)
    return bool(body.get("error")) and isinstance(detail, str) and len(detail) > 10


# schemathesis drives hypothesis strategies built from the OpenAPI document directly (its pytest
# plugin does not run on this pytest); positive and negative generation for every operation.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
def test_no_generated_request_gets_a_5xx_and_every_4xx_names_the_problem(api_app, mode):
    ops = operations(api_app)
    assert {f"{o.method.upper()} {o.path}" for o in ops} >= {"POST /predict", "POST /predict/batch", "GET /health"}
    for op in ops:

        @given(case=op.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.generate],
        )
        def check(case):
            response = case.call()
            SEEN["total"] += 1
            SEEN[f"{case.method} {case.path}"] += 1
            SEEN[response.status_code // 100 * 100] += 1
            where = f"{case.method} {case.formatted_path} ({mode.value})"
            assert response.status_code < 500, f"{where}: {response.status_code} {response.text[:300]}"
            if 400 <= response.status_code < 500 and response.status_code not in (404, 405):
                body = json.loads(response.text)
                assert names_the_problem(body), (
                    f"{where}: {response.status_code} names no problem: {response.text[:300]}"
                )

        try:
            check()
        except Unsatisfiable:
            # Nothing to make invalid (no body; any string is a valid id): only GETs may end here.
            assert mode is GenerationMode.NEGATIVE and op.method.upper() == "GET", op.path


def test_at_least_a_thousand_requests_were_fuzzed():
    """Runs after the generated tests in this module (pytest keeps file order)."""
    print(f"\nfuzzed requests: {dict(SEEN)}")
    assert SEEN["total"] >= 1000, dict(SEEN)
    assert SEEN.get(500, 0) == 0
