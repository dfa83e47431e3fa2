"""The console in a real browser, against the demo stack: what a retention agent and a model owner do."""

from __future__ import annotations

import csv
import io
import json
import os
import urllib.request
from typing import Any

from tests.browser.conftest import fits_laptop_width, screenshot


def _json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())


def _dashboard(demo: dict[str, Any], path: str) -> Any:
    return _json(demo["url"].removesuffix("/console") + "/dashboard" + path)


def _rows(page: Any) -> list[dict[str, str]]:
    """The call list's table as the page shows it."""
    return page.evaluate(
        """() => [...document.querySelector('main table').querySelectorAll('tr')].slice(1).map(tr => {
             const td = [...tr.querySelectorAll('td')].map(c => c.innerText.trim());
             return {rank: td[0], id: td[1], p: td[2], risk: td[3], reasons: td[4], action: td[5], value: td[6]};
           })"""
    )


def test_the_call_list_shows_the_customers_the_batch_job_scored(demo, page):
    expected = _dashboard(demo, "/call-list?size=25")
    page.goto(demo["url"])  # the URL the demo printed
    assert page.url.endswith("/console/call-list")
    job = expected["job"]
    assert f"Job {job['job_id']} scored {job['scored']:,} customers" in page.inner_text("main")
    rows = _rows(page)
    assert [r["id"] for r in rows] == [e["customer_id"] for e in expected["entries"]]
    assert page.get_by_text(f"Customers 1 to 25 of {expected['total']:,}").is_visible()
    probabilities = [float(r["p"]) for r in rows]
    assert probabilities == sorted(probabilities, reverse=True)
    # readable without colour: each risk level is a word (and a symbol), each row has its action
    assert all(r["risk"].split()[-1] in ("high", "medium") for r in rows)
    assert all(r["action"] and r["reasons"] for r in rows)
    assert page.locator("svg title", has_text="Score distribution").count() == 1
    assert fits_laptop_width(page)
    screenshot(page, "call-list")


def test_filters_change_the_list(demo, page):
    page.goto(demo["url"] + "/call-list")
    everyone = page.inner_text("main table caption")
    page.get_by_label("◆ medium").uncheck()
    reason = page.locator("#reason option").nth(1).get_attribute("value")
    page.select_option("#reason", reason)
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_url("**/call-list?*")
    rows = _rows(page)
    assert rows and page.inner_text("main table caption") != everyone
    assert all(r["risk"].endswith("high") for r in rows)
    assert all(f"{reason} = " in r["reasons"] for r in rows)
    expected = _dashboard(demo, f"/call-list?risk=high&reason={reason}&size=25")
    assert [r["id"] for r in rows] == [e["customer_id"] for e in expected["entries"]]
    screenshot(page, "call-list-filtered")


def test_the_export_downloads_the_filtered_customers(demo, page):
    page.goto(demo["url"] + "/call-list?risk=high&size=10")
    shown = _rows(page)
    with page.expect_download() as info:
        page.click("#export")
    download = info.value
    assert download.suggested_filename.endswith(".csv")
    rows = list(csv.DictReader(io.StringIO(open(download.path(), encoding="utf-8").read())))
    expected = _dashboard(demo, "/call-list?risk=high&size=200")
    assert len(rows) == expected["total"]  # every filtered customer, not just the page shown
    assert [r["customer_id"] for r in rows[: len(shown)]] == [r["id"] for r in shown]
    assert {r["risk_level"] for r in rows} == {"high"}
    first = expected["entries"][0]
    assert rows[0]["churn_probability"] == f"{first['churn_probability']:.4f}"
    assert rows[0]["recommended_action"] == first["recommended_action"]


def test_keyboard_alone_reaches_the_filters_and_applies_them(demo, page):
    page.goto(demo["url"] + "/call-list")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    for _ in range(40):  # from the main content, tab to the medium checkbox
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.value") == "medium":
            break
    assert page.evaluate("document.activeElement.type") == "checkbox"
    page.keyboard.press("Space")  # untick medium
    while page.evaluate("document.activeElement.tagName") != "BUTTON":
        page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_url("**/call-list?*")
    assert all(r["risk"].endswith("high") for r in _rows(page))


def test_a_customer_lookup_shows_the_reasons(demo, page):
    first = _dashboard(demo, "/call-list?risk=high&size=1")["entries"][0]
    page.goto(demo["url"] + "/customers")
    page.get_by_label("Customer id").fill(first["customer_id"])
    page.get_by_role("button", name="Look up").click()
    result = page.inner_text("#lookup-result")
    assert f"Customer {first['customer_id']}" in result
    for reason in first["reasons"]:
        assert f"{reason['feature']} = {reason['value']}: {reason['effect']}" in result
    assert first["recommended_action"] in result
    assert f"{first['churn_probability']:.4f}" in result
    screenshot(page, "customer")
    page.get_by_label("Customer id").fill("0000-NOBODY")
    page.get_by_role("button", name="Look up").click()
    assert "No stored score for this customer" in page.inner_text("#lookup-result")


def test_the_model_page_shows_the_champions_metrics(demo, page):
    models = _dashboard(demo, "/models")
    champion = models["champion"]
    page.goto(demo["url"] + "/models")
    main = page.inner_text("main")
    assert f"Champion: {champion['version']}" in main
    m = champion["metrics"]
    assert f"{m['cv_roc_auc']:.4f} ± {m['cv_roc_auc_std']:.4f}" in main
    assert f"{m['brier']:.4f}" in main
    assert models["canary"]["version"] in main
    assert page.locator("svg title", has_text="ROC curve").count() == 1  # the stored evaluation's curves
    assert page.locator("svg title", has_text="Calibration").count() == 1
    assert fits_laptop_width(page)
    screenshot(page, "models")


def test_the_drift_view_renders_its_chart(demo, page):
    report = _dashboard(demo, "/drift/latest")
    page.goto(demo["url"] + "/drift")
    chart = page.locator("figure svg").first
    assert chart.locator(":scope > title").text_content() == "PSI per feature"
    box = chart.bounding_box()
    assert box and box["width"] > 100 and box["height"] > 100
    bars = chart.locator("rect")
    assert bars.count() == len(report["features"]) + (1 if report.get("score") else 0)
    for name in [f["name"] for f in report["features"] if f["drifted"]]:
        assert page.locator("svg title", has_text=name).count() >= 1  # its distribution is drawn too
    page.get_by_text("The numbers behind this chart").first.click()  # the same numbers as a table
    assert page.locator("figure details table").first.is_visible()
    screenshot(page, "drift")


def test_the_canary_and_retraining_pages(demo, page):
    canary = _dashboard(demo, "/canary")
    page.goto(demo["url"] + "/canary")
    main = page.inner_text("main")
    assert canary["config"]["version"] in main
    test = canary["comparison"]["tests"]["canary"]
    assert test["verdict"] in main and f"{test['p_value']:.4f}" in main
    assert page.locator("svg title", has_text="Error rate over time").count() == 1
    screenshot(page, "canary")
    page.goto(demo["url"] + "/retraining")
    runs = _dashboard(demo, "/runs")["runs"]
    cells = page.locator("main table").first.locator("tr td:nth-child(2)").all_inner_texts()
    assert cells == [r["version"] for r in runs]
    assert "serving" in page.inner_text("main")
    screenshot(page, "retraining")


def test_a_person_signs_in_chooses_a_password_and_signs_out(browser, tmp_path):
    """Sign-in as deployed (the Cognito user pool; here moto's, in the emulator) in a real browser: the
    session cookie (HttpOnly, Secure, SameSite=Strict) must survive the redirect after signing in."""
    import boto3

    from churnguard.bootstrap import build_services
    from churnguard.entrypoints.api import build_console_app
    from churnguard.local.emulator import Emulator, free_port
    from churnguard.local.server import ApiServer
    from churnguard.settings import Settings
    from tests.browser.conftest import LAPTOP

    with Emulator() as emu:
        idp = boto3.client("cognito-idp", endpoint_url=emu.endpoint, region_name="us-east-1")
        pool = idp.create_user_pool(PoolName="console")["UserPool"]["Id"]
        client_id = idp.create_user_pool_client(
            UserPoolId=pool, ClientName="console", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
        )["UserPoolClient"]["ClientId"]
        idp.admin_create_user(UserPoolId=pool, Username="ana", TemporaryPassword="Temporary-Passw0rd")
        settings = Settings.from_env({**emu.env, "CONSOLE_USER_POOL_CLIENT_ID": client_id})
        saved = {k: os.environ.get(k) for k in emu.env}
        os.environ.update(emu.env)  # the clients the app builds reach the emulator
        try:
            app = build_console_app(build_services(settings))
            port = free_port()
            server = ApiServer(app, "127.0.0.1", port).start()
            context = browser.new_context(viewport=LAPTOP)
            page = context.new_page()
            page.goto(f"http://127.0.0.1:{port}/console/models")
            assert page.url.endswith("/console/sign-in?next=models")
            screenshot(page, "sign-in")
            page.get_by_label("User name").fill("ana")
            page.get_by_label("Password").fill("not-her-Passw0rd")
            page.get_by_role("button", name="Sign in").click()
            assert "Sign-in refused: wrong user name or password." in page.inner_text("[role=alert]")
            page.get_by_label("Password").fill("Temporary-Passw0rd")
            page.get_by_role("button", name="Sign in").click()
            page.get_by_label("New password").fill("Chosen-Passw0rd-2026")
            page.get_by_role("button", name="Set password").click()
            page.wait_for_url("**/console/models")
            assert "Signed in as ana" in page.inner_text("header")
            assert page.inner_text("h1") == "Models"
            page.get_by_role("link", name="Call list").click()  # the session holds across pages
            assert page.inner_text("h1") == "Call list"
            page.get_by_role("button", name="Sign out").click()
            page.wait_for_url("**/console/sign-in")
            page.goto(f"http://127.0.0.1:{port}/console/models")
            assert "/console/sign-in" in page.url
            context.close()
            server.stop()
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
