"""The deployed console function: the dashboard routes behind the API key, the pages behind sign-in.

LocalStack community has no Cognito, so signing in is tested under moto (tests/functional/test_console.py);
here the deployed pages must send a person without a session to the sign-in page, never show data.
"""

from __future__ import annotations

from infra.deploy.localstack_deploy import local_api_url


def test_the_dashboard_answers_with_the_key_and_refuses_without(stack, api, registry):
    import httpx

    response = api.get("/dashboard/models")
    assert response.status_code == 200, f"{response.text[:500]}\n{stack.function_logs('ConsoleFunction')}"
    assert response.json()["champion"]["version"] == registry.champion().version
    runs = api.get("/dashboard/runs").json()["runs"]
    assert registry.champion().version in [r["version"] for r in runs]
    with httpx.Client(base_url=str(api.base_url), timeout=60, trust_env=False) as anonymous:
        assert anonymous.get("/dashboard/models").status_code == 403


def test_the_console_pages_send_people_to_sign_in(stack):
    import httpx

    stack.require("ConsoleUrl", "ConsoleUserPoolId")
    base = local_api_url(stack.outputs["ConsoleUrl"], stack.target.endpoint)
    with httpx.Client(base_url=base, timeout=60, trust_env=False, follow_redirects=False) as people:
        page = people.get("/console/call-list")
        assert page.status_code == 303, f"{page.text[:500]}\n{stack.function_logs('ConsoleFunction')}"
        assert page.headers["location"] == "sign-in?next=call-list"
        form = people.get("/console/sign-in")
        assert form.status_code == 200 and 'name="password"' in form.text
        assert form.headers["cache-control"] == "no-store"
