"""Property-based fuzzing of the API from its own OpenAPI document (schemathesis, in process).

The app is the real one (bootstrap.build_app: champion from the registry, feedback into the
outcomes table, customer scores) over moto. Schemathesis generates valid and invalid requests
for every operation and validates each answer with all of its built-in checks: no 5xx; the
status code, content type, headers and body conform to what the document declares for that
operation; data the document calls valid is accepted and data it calls invalid is refused. On top
of that every 4xx must say what is wrong.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi import unregister_string_format

from churnguard.domain.outcomes import EARLIEST
from tests.functional.test_security_degradation import register

EXAMPLES_PER_OPERATION = 200
SEEN: Counter = Counter()


@pytest.fixture
def api_app(aws, services, trained):
    from churnguard.entrypoints.api import build_app

    register(services, trained, "v1", promote=True)
    return build_app(services)


@pytest.fixture(autouse=True, scope="module")
def observed_dates_the_document_allows():
    """The document bounds observed_date in words (from 1990-01-01 to today): JSON Schema cannot say
    "today". Valid dates are generated inside that range, so "valid data is accepted" is checked
    against the whole contract; invalid ones are still generated from the schema."""
    today = datetime.now(UTC).date()
    schemathesis.openapi.format("date", st.dates(EARLIEST, today).map(lambda d: d.isoformat()))
    yield
    unregister_string_format("date")


def operations(app):
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    return [r.ok() for r in schema.get_all_operations()]


def names_the_problem(body: dict) -> bool:
    """A 4xx body names the problem: a field with what is wrong, or a specific detail."""
    if body.get("problems"):
        return all(isinstance(p.get("field"), str) and p.get("problem") for p in body["problems"])
    detail = body.get("detail")
    return bool(body.get("error")) and isinstance(detail, str) and len(detail) > 10


# schemathesis drives hypothesis strategies built from the OpenAPI document directly (its pytest
# plugin does not run on this pytest); positive and negative generation for every operation.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
def test_every_generated_request_gets_an_answer_the_document_describes(api_app, mode):
    ops = operations(api_app)
    assert {f"{o.method.upper()} {o.path}" for o in ops} >= {
        "POST /predict",
        "POST /predict/batch",
        "POST /feedback",
        "GET /customers/{customer_id}/score",
        "GET /health",
        "GET /model",
    }
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
            # Every built-in check schemathesis has (the default set): not_a_server_error,
            # status_code/content_type/response_headers/response_schema conformance,
            # positive_data_acceptance, negative_data_rejection, and the method/auth ones.
            response = case.call_and_validate()
            SEEN["total"] += 1
            SEEN[f"{case.method} {case.path}"] += 1
            SEEN[response.status_code // 100 * 100] += 1
            where = f"{case.method} {case.formatted_path} ({mode.value})"
            if 400 <= response.status_code < 500:
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
