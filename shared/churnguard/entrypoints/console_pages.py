"""The console: server-rendered pages for the retention team and the model owners.

Plain HTML forms and links, no script and no frontend build: every page works with a keyboard
alone (a skip link, visible focus, real buttons and labels), says everything in words as well
as in colour (risk levels carry a symbol and a word; every chart has a table of its numbers),
and fits a laptop's width. Charts are inline SVG from domain/reports.py, as in the stored reports.

Pages (all GET, all read-only): the call list (filters, paging, CSV export), a customer lookup,
models, drift, canary and retraining. People sign in through the Cognito user pool
(``ConsoleSignIn``); without one (``churn console`` on 127.0.0.1 against the emulator) the pages
are open to whoever can reach that address, which is only this machine.

    app.include_router(console_router(build_console(services), build_console_sign_in(services)))
"""
# No `from __future__ import annotations`: FastAPI reads the route signatures.

import re
from collections.abc import Callable, Mapping, Sequence
from html import escape
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from churnguard.bootstrap import ConsoleSignIn
from churnguard.domain import reports
from churnguard.domain.call_list import CallList, call_list_csv, reason_text
from churnguard.domain.errors import SignInRefusedError
from churnguard.services.console import ConsoleReads

PREFIX = "/console"
SESSION_COOKIE = "churnguard_console"
RiskLevel = Literal["high", "medium"]
RISK_MARK = {"high": "▲ high", "medium": "◆ medium", "low": "▽ low"}
# Personal data: never cached, never framed, no third-party anything.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
NAV = (
    ("call-list", "Call list"),
    ("customers", "Customer lookup"),
    ("models", "Models"),
    ("drift", "Drift"),
    ("canary", "Canary"),
    ("retraining", "Retraining"),
)

CSS = """
*{box-sizing:border-box}body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1a1a1a;
background:#fff;line-height:1.45}a{color:#0b4fa8}a:focus,button:focus,input:focus,select:focus,summary:focus{
outline:3px solid #c25100;outline-offset:2px}.skip{position:absolute;left:-999px}.skip:focus{left:.5rem;top:.5rem;
background:#fff;padding:.4rem;z-index:2}header{background:#12263f;color:#fff;padding:.6rem 1rem;display:flex;
flex-wrap:wrap;gap:.4rem 1.2rem;align-items:center}header a{color:#fff}header .brand{font-weight:700;margin-right:1rem}
header nav ul{list-style:none;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:.2rem .9rem}
header nav a[aria-current=page]{text-decoration:underline;text-decoration-thickness:3px;font-weight:700}
header .who{margin-left:auto;font-size:.9rem}header form{display:inline}header button{font:inherit;
background:none;border:1px solid #fff;color:#fff;border-radius:3px;cursor:pointer}
main{max-width:1200px;margin:0 auto;padding:1rem}h1{font-size:1.5rem;margin:.4rem 0 1rem}h2{font-size:1.15rem;
margin-top:1.6rem}.table-wrap{overflow-x:auto}table{border-collapse:collapse;font-size:.92rem;width:100%}
caption{text-align:left;font-weight:600;padding:.3rem 0}th,td{border-bottom:1px solid #ccc;padding:.35rem .5rem;
text-align:left;vertical-align:top}th{background:#f1f3f6}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.risk-high{font-weight:700}.risk-medium{font-style:italic}fieldset{border:1px solid #bbb;padding:.5rem .8rem;
margin:0}form.filters{display:flex;flex-wrap:wrap;gap:.8rem;align-items:flex-end;margin-bottom:1rem}
label{display:inline-block;margin-right:.6rem}button,.button{font:inherit;padding:.35rem .9rem;border:1px solid #0b4fa8;
background:#0b4fa8;color:#fff;border-radius:3px;text-decoration:none;cursor:pointer}.button.secondary{background:#fff;
color:#0b4fa8}.plots{display:flex;flex-wrap:wrap;gap:1rem}figure{margin:0;max-width:100%}figure svg{max-width:100%;
height:auto}figcaption{font-size:.85rem;color:#333}.note{color:#333;font-size:.9rem}.bad{font-weight:700}
.pager{display:flex;gap:1rem;align-items:center;margin:.8rem 0}dl.facts{display:grid;
grid-template-columns:max-content 1fr;gap:.2rem 1rem}dl.facts dt{font-weight:600}
.error{border:2px solid #b00020;padding:.6rem;margin:.6rem 0}
details{margin:.4rem 0}td.id{white-space:nowrap}@media (max-width:700px){header .who{margin-left:0}}
"""


# ----- HTML helpers ------------------------------------------------------------------------------------
def _e(v: Any) -> str:
    return escape("" if v is None else str(v))


def _num(v: Any, digits: int = 4) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return _e(v)


def _money(v: Any) -> str:
    return "n/a" if v is None else f"{v:,.2f}"


def _risk(level: str) -> str:
    return f'<span class="risk-{_e(level)}">{_e(RISK_MARK.get(level, level))}</span>'


def _table(caption: str, headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[int] = ()) -> str:
    """A table whose cells are already HTML; columns in ``numeric`` align right."""
    head = "".join(f'<th scope="col"{" class=num" if i in numeric else ""}>{_e(h)}</th>' for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(f"<td{' class=num' if i in numeric else ''}>{c}</td>" for i, c in enumerate(r)) + "</tr>"
        for r in rows
    )
    return f'<div class="table-wrap"><table><caption>{_e(caption)}</caption><tr>{head}</tr>{body}</table></div>'


def _figure(svg: str, caption: str, data_table: str = "") -> str:
    extra = f"<details><summary>The numbers behind this chart</summary>{data_table}</details>" if data_table else ""
    return f"<figure>{svg}<figcaption>{_e(caption)}</figcaption>{extra}</figure>"


def _facts(items: Sequence[tuple[str, str]]) -> str:
    return '<dl class="facts">' + "".join(f"<dt>{_e(k)}</dt><dd>{v}</dd>" for k, v in items) + "</dl>"


def _page(title: str, body: str, active: str, user: str | None, status: int = 200) -> HTMLResponse:
    nav = "".join(
        f'<li><a href="{slug}"{" aria-current=page" if slug == active else ""}>{_e(label)}</a></li>'
        for slug, label in NAV
    )
    who = (
        f'Signed in as {_e(user)} <form method="post" action="sign-out"><button type="submit">Sign out</button></form>'
        if user and user != LOCAL_USER
        else ("Local console (no sign-in)" if user == LOCAL_USER else "")
    )
    html = (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{_e(title)} · churnguard</title>'
        f"<style>{CSS}</style></head><body>"
        f'<a class="skip" href="#main">Skip to content</a><header><span class="brand">churnguard console</span>'
        f'<nav aria-label="Console"><ul>{nav}</ul></nav><span class="who">{who}</span></header>'
        f'<main id="main" tabindex="-1"><h1>{_e(title)}</h1>{body}</main></body></html>'
    )
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def error_page(status: int, error: str, detail: str) -> HTMLResponse:
    """A domain error as a page (api.py's one error mapping calls this for console paths)."""
    body = f'<div class="error" role="alert"><p><strong>{_e(error)}</strong></p><p>{_e(detail)}</p></div>'
    return _page(error[:1].upper() + error[1:], body, "", None, status)


LOCAL_USER = "local"


# ----- the call list -----------------------------------------------------------------------------------
def _call_list_query(risk: Sequence[str], reason: str | None, **more: Any) -> str:
    params: list[tuple[str, Any]] = [("risk", r) for r in risk]
    if reason:
        params.append(("reason", reason))
    params.extend((k, v) for k, v in more.items() if v is not None)
    return urlencode(params)


def _call_list_body(view: Mapping[str, Any], risk: Sequence[str], reason: str | None) -> str:
    job = view["job"]
    if job is None:
        return (
            '<p role="status">No batch scoring job has finished yet, so there is no one to call. Score your '
            "customers with <code>churn score --input s3://... --output s3://...</code> and come back.</p>"
        )
    counts = view["risk_counts"]
    intro = (
        f"<p>Job <strong>{_e(job['job_id'])}</strong> scored {view['rows_scored']:,} customers with model "
        f"{_e(job['model_version'])} (finished {_e(job.get('finished_at'))}): {counts.get('high', 0):,} at high "
        f"risk, {counts.get('medium', 0):,} at medium risk. Most likely to leave first.</p>"
    )
    if view.get("truncated"):
        intro += '<p class="note">Only the most likely customers are kept in this list (CONSOLE_MAX_CALL_LIST).</p>'
    econ = view.get("economics")
    intro += (
        f'<p class="note">Expected value = probability × save rate {econ["save_rate"]:g} × customer value '
        f"{econ['customer_value']:,.2f} − offer cost {econ['offer_cost']:,.2f} (the model's training config).</p>"
        if econ
        else '<p class="note">Expected value: n/a (the model was trained without offer_cost and customer_value).</p>'
    )
    checks = "".join(
        f'<label><input type="checkbox" name="risk" value="{lvl}"{" checked" if lvl in risk else ""}> '
        f"{_e(RISK_MARK[lvl])}</label>"
        for lvl in ("high", "medium")
    )
    options = '<option value="">any reason</option>' + "".join(
        f'<option value="{_e(f)}"{" selected" if f == reason else ""}>{_e(f)} ({n:,})</option>'
        for f, n in view["reasons"].items()
    )
    sizes = "".join(
        f'<option value="{n}"{" selected" if n == view["size"] else ""}>{n}</option>' for n in (10, 25, 50, 100)
    )
    filters = (
        f'<form class="filters" method="get" action="call-list" aria-label="Filter the call list">'
        f"<fieldset><legend>Risk level</legend>{checks}</fieldset>"
        f'<div><label for="reason">Reason (increases risk)</label><br><select id="reason" name="reason">{options}'
        f'</select></div><div><label for="size">Rows per page</label><br><select id="size" name="size">{sizes}'
        '</select></div><div><button type="submit">Apply filters</button></div></form>'
    )
    total = view["total"]
    export = (
        f'<p><a class="button secondary" id="export" href="call-list.csv?{_call_list_query(risk, reason)}"'
        f" download>Export these {total:,} customers (CSV)</a></p>"
    )
    rows = []
    for rank, e in enumerate(view["entries"], start=view["first_rank"]):
        reasons = "<br>".join(_e(reason_text(r)) for r in e["reasons"]) or "not computed for this risk level"
        link = f"customers?{urlencode({'customer_id': e['customer_id']})}"
        rows.append(
            [
                str(rank),
                f'<a class="customer" href="{_e(link)}">{_e(e["customer_id"])}</a>',
                f"{e['churn_probability']:.4f}",
                _risk(e["risk_level"]),
                reasons,
                _e(e["recommended_action"]),
                _money(e["expected_value"]),
            ]
        )
    shown = (
        f"Customers {view['first_rank']:,} to {view['first_rank'] + len(rows) - 1:,} of {total:,}"
        if rows
        else "No customer matches these filters"
    )
    table = _table(
        shown,
        ["Rank", "Customer", "Churn probability", "Risk", "Main reasons", "Recommended action", "Expected value"],
        rows,
        numeric=(0, 2, 6),
    )
    pager = ""
    if view["pages"] > 1:
        links = []
        if view["page"] > 1:
            q = _call_list_query(risk, reason, size=view["size"], page=view["page"] - 1)
            links.append(f'<a href="call-list?{q}" rel="prev">Previous page</a>')
        links.append(f"<span>Page {view['page']} of {view['pages']}</span>")
        if view["page"] < view["pages"]:
            q = _call_list_query(risk, reason, size=view["size"], page=view["page"] + 1)
            links.append(f'<a href="call-list?{q}" rel="next">Next page</a>')
        pager = f'<nav class="pager" aria-label="Pages of the call list">{"".join(links)}</nav>'
    dist = view["score_distribution"]
    n = max(sum(dist["counts"]), 1)
    chart = reports.bar_chart(dist["bins"], {"customers": [c / n for c in dist["counts"]]}, "Score distribution")
    dist_table = _table(
        "Customers per probability bin",
        ["Churn probability", "Customers"],
        [[_e(b), f"{c:,}"] for b, c in zip(dist["bins"], dist["counts"], strict=False)],
        numeric=(1,),
    )
    figure = _figure(
        chart, f"Churn probability of all {view['rows_scored']:,} scored customers (share per bin)", dist_table
    )
    return intro + filters + export + table + pager + "<h2>Score distribution</h2>" + figure


# ----- models ---------------------------------------------------------------------------------------
def _metrics_facts(m: Mapping[str, Any]) -> str:
    cm = m.get("confusion_matrix") or {}
    items = [
        ("CV ROC-AUC", f"{_num(m.get('cv_roc_auc'))} ± {_num(m.get('cv_roc_auc_std'))}"),
        ("CV PR-AUC", _num(m.get("cv_pr_auc"))),
        ("Brier score", _num(m.get("brier"))),
        ("Calibration error", _num(m.get("calibration_error"))),
        ("F1 at the threshold", _num(m.get("f1"))),
        ("Decision threshold", f"{_num(m.get('threshold'))} ({_e(m.get('threshold_method'))})"),
        ("Training rows", _num(m.get("rows"))),
        ("Churn rate in training", _num(m.get("positive_rate"))),
    ]
    if isinstance(cm, Mapping) and cm:
        items.append(("Confusion matrix", _e(", ".join(f"{k} {v}" for k, v in cm.items()))))
    return _facts(items)


def _curve_table(curves: Mapping[str, Any], key: str, x: str, y: str) -> str:
    rows = []
    for model, c in curves.items():
        pts = c.get(key) or {}
        for xv, yv in list(zip(pts.get("x") or [], pts.get("y") or [], strict=False))[
            :: max(1, len(pts.get("x") or []) // 12)
        ]:
            rows.append([_e(model), _num(float(xv), 3), _num(float(yv), 3)])
    return _table(f"{key} points (sampled)", ["model", x, y], rows, numeric=(1, 2))


def _evaluation_section(ev: Mapping[str, Any] | None) -> str:
    if not ev:
        return "<p>No evaluation report yet: the retraining loop writes one for every candidate.</p>"
    passed = "passed" if ev.get("passed") else "failed"
    # The stored report's "champion" holds the champion's metrics (None when there was no champion).
    cp = ev.get("champion") if isinstance(ev.get("champion"), Mapping) else {}
    body = (
        f"<p>Candidate <strong>{_e(ev.get('version'))}</strong> against {'the champion' if cp else 'no champion'}"
        f" on {_e(ev.get('rows'))} held-out rows ({_e(ev.get('positives'))} churned): gate "
        f'<strong>{passed}</strong>. <span class="note">Report: {_e(ev.get("html"))}</span></p>'
    )
    checks = [
        [_e(c["name"]), "pass" if c["passed"] else '<span class="bad">FAIL</span>', _e(c["detail"])]
        for c in ev.get("checks", [])
    ]
    body += _table("Gate checks", ["check", "result", "detail"], checks)
    ch = ev.get("challenger") or {}
    body += _table(
        "Held-out metrics",
        ["metric", "candidate", "champion"],
        [
            [m, _num(ch.get(m)), _num(cp.get(m)) if cp else "n/a"]
            for m in ("roc_auc", "pr_auc", "brier", "calibration_error", "f1")
        ],
        numeric=(1, 2),
    )
    curves = {k: v for k, v in (ev.get("curves") or {}).items() if k in ("challenger", "champion")}
    if curves:
        roc = reports.line_chart(
            {k: v["roc"] for k, v in curves.items()},
            "ROC curve",
            "false positive rate",
            "true positive rate",
            diagonal=True,
        )
        cal = reports.line_chart(
            {k: v["calibration"] for k, v in curves.items()},
            "Calibration",
            "mean predicted probability",
            "observed churn rate",
            diagonal=True,
            markers=True,
        )
        body += '<div class="plots">'
        body += _figure(
            roc,
            "ROC curve on the held-out rows (challenger = the candidate)",
            _curve_table(curves, "roc", "FPR", "TPR"),
        )
        body += _figure(
            cal,
            "Calibration: predicted against observed churn",
            _curve_table(curves, "calibration", "predicted", "observed"),
        )
        body += "</div>"
    return body


def _models_body(view: Mapping[str, Any], evaluation: Mapping[str, Any] | None) -> str:
    champ = view["champion"]
    if champ is None:
        body = "<p role='status'>No champion has been promoted yet.</p>"
    else:
        body = (
            f'<section aria-labelledby="champion"><h2 id="champion">Champion: {_e(champ["version"])}</h2>'
            f"<p>Serving since {_e(view.get('champion_since'))}; trained {_e(champ['created_at'])} on "
            f"{_e((champ.get('lineage') or {}).get('data_source'))}.</p>{_metrics_facts(champ['metrics'])}</section>"
        )
    canary = view.get("canary")
    body += "<h2>Canary</h2>" + (
        f"<p>{_e(canary['version'])} answers {float(canary.get('share', 0)):.0%} of customers"
        f"{' (shadow: scores every request, answers none)' if canary.get('shadow') else ''}, since "
        f"{_e(canary.get('updated_at'))}. <a href='canary'>Compare the variants</a>.</p>"
        if canary
        else "<p>No canary or shadow is running.</p>"
    )
    rows = []
    for v in view["versions"]:
        m = v["metrics"] or {}
        role = "champion" if v["champion"] else "canary" if v["canary"] else ""
        rows.append(
            [
                _e(v["version"]),
                _e(v["status"]) + (f" <strong>({role})</strong>" if role else ""),
                _num(m.get("cv_roc_auc")),
                _num(m.get("brier")),
                _num(m.get("calibration_error")),
                _e(v["created_at"]),
                _e(v.get("reason") or ""),
            ]
        )
    body += "<h2>Versions</h2>" + _table(
        "Every registered version, newest first",
        ["version", "status", "CV ROC-AUC", "Brier", "calibration error", "trained", "last change"],
        rows,
        numeric=(2, 3, 4),
    )
    body += "<h2>Latest evaluation</h2>" + _evaluation_section(evaluation)
    return body


# ----- drift ----------------------------------------------------------------------------------------
def _drift_body(report: Mapping[str, Any] | None) -> str:
    if not report:
        return "<p role='status'>The drift check has not written a report yet (it runs daily).</p>"
    window = report.get("window") or {}
    body = (
        f"<p>Decision: <strong>{_e(report.get('decision'))}</strong> · champion {_e(report.get('champion_version'))} ·"
        f" {report.get('rows', 0):,} recent predictions, {_e(window.get('start'))} to {_e(window.get('end'))}."
        f' <span class="note">Report: {_e(report.get("html"))}</span></p>'
        "<ul>" + "".join(f"<li>{_e(r)}</li>" for r in report.get("reasons", [])) + "</ul>"
    )
    features = list(report.get("features") or [])
    if report.get("score"):
        features.append(report["score"])
    if features:
        ordered = sorted(features, key=lambda f: -(f.get("psi") or 0))
        chart = reports.horizontal_bars({f["name"]: float(f.get("psi") or 0) for f in ordered}, "PSI per feature")
        rows = [
            [
                _e(f["name"]),
                _num(f.get("psi")),
                _e(f.get("test")),
                _num(f.get("p_value"), 3),
                '<span class="bad">yes, drifted</span>' if f.get("drifted") else "no",
            ]
            for f in ordered
        ]
        table = _table(
            "Every check, largest shift first", ["feature", "PSI", "test", "p-value", "drifted"], rows, (1, 3)
        )
        body += "<h2>Drift per feature</h2>" + _figure(
            chart, "Population stability index of each feature and of the score, recent against training", table
        )
    drifted = [f for f in features if f.get("drifted")]
    if drifted:
        body += '<h2>Drifted distributions</h2><div class="plots">'
        for f in drifted:
            chart = reports.bar_chart(f["bins"], {"reference": f["reference"], "recent": f["recent"]}, f["name"])
            rows = [
                [_e(b), _num(float(r), 3), _num(float(c), 3)]
                for b, r, c in zip(f["bins"], f["reference"], f["recent"], strict=False)
            ]
            table = _table(f"{f['name']}: share per bin", ["bin", "reference (training)", "recent"], rows, (1, 2))
            body += _figure(chart, f"{f['name']}: training (reference) against recent traffic", table)
        body += "</div>"
    return body


# ----- canary ---------------------------------------------------------------------------------------
def _canary_body(view: Mapping[str, Any]) -> str:
    config = view.get("config")
    if config:
        serves = (
            "shadows every request (answers none)"
            if config.get("shadow")
            else f"answers {float(config.get('share', 0)):.0%} of customers"
        )
        body = (
            f"<p>{_e(config['version'])} {serves} (set {_e(config.get('updated_at'))}, {_e(config.get('reason'))}).</p>"
        )
    else:
        body = "<p>No canary or shadow is running now; results of earlier ones are below if outcomes cover them.</p>"
    body += (
        f"<p>{view.get('outcomes', 0):,} outcomes observed {_e(view.get('since'))} to {_e(view.get('until'))}, each "
        "joined to the customer's latest prediction made before the day it was observed.</p>"
    )
    comparison = view.get("comparison")
    if not comparison or not comparison.get("variants"):
        return body + "<p>No labelled predictions yet: results appear as outcomes arrive (POST /feedback).</p>"
    rows = [
        [
            _e(v),
            f"{s['n']:,}",
            f"{s['errors']:,}",
            _num(s["error_rate"]),
            _num(s["brier"]),
            _num(s["roc_auc"]),
            _e(", ".join(s["model_versions"])),
        ]
        for v, s in comparison["variants"].items()
    ]
    body += _table(
        "Results per variant",
        ["variant", "labelled", "errors", "error rate", "Brier", "ROC-AUC", "versions"],
        rows,
        (1, 2, 3, 4, 5),
    )
    tests = [
        [_e(v), _e(t.get("test")), _num(t.get("p_value"), 4), _e(t.get("verdict"))]
        for v, t in comparison.get("tests", {}).items()
    ]
    if tests:
        body += _table(
            f"Against the champion (alpha {comparison.get('alpha')})",
            ["variant", "test", "p-value", "verdict"],
            tests,
            (2,),
        )
    over = view.get("over_time") or {}
    periods = sorted({p["start"] for series in over.values() for p in series})
    if len(periods) >= 2:
        pos = {start: i / (len(periods) - 1) for i, start in enumerate(periods)}
        series = {v: {"x": [pos[p["start"]] for p in s], "y": [p["error_rate"] for p in s]} for v, s in over.items()}
        chart = reports.line_chart(
            series,
            "Error rate over time",
            f"{view.get('period_days', 7)}-day periods, {periods[0]} to {periods[-1]}",
            "error rate",
            markers=True,
        )
        rows = [[_e(v), _e(p["start"]), f"{p['n']:,}", _num(p["error_rate"])] for v, s in over.items() for p in s]
        table = _table("Error rate per period", ["variant", "period from", "labelled", "error rate"], rows, (2, 3))
        body += "<h2>Canary over time</h2>" + _figure(chart, "Error rate of each variant per period", table)
    return body


# ----- retraining -----------------------------------------------------------------------------------
def _retraining_body(view: Mapping[str, Any]) -> str:
    runs = view.get("runs") or []
    if not runs:
        return "<p role='status'>No training run has registered a model yet.</p>"
    note = (
        ""
        if view.get("state_machine")
        else "<p class='note'>Runs that failed before registering a model are not listed: this console "
        "is not given the retraining state machine (RETRAIN_STATE_MACHINE_ARN).</p>"
    )
    rows = [
        [
            _e(r["trained_at"]),
            _e(r["version"] or "none"),
            _e(r["trigger"]) + (f"<br><span class='note'>{_e(r['execution'])}</span>" if r.get("execution") else ""),
            f"<strong>{_e(r['outcome'])}</strong>",
            _num(r.get("cv_roc_auc")),
            "n/a" if r.get("gate_passed") is None else ("passed" if r["gate_passed"] else "failed"),
            _e(r.get("detail") or ""),
        ]
        for r in runs
    ]
    return note + _table(
        "Training runs, newest first",
        ["started", "version", "trigger", "outcome", "CV ROC-AUC", "gate", "detail"],
        rows,
        numeric=(4,),
    )


# ----- customer ------------------------------------------------------------------------------------
def _customer_body(customer_id: str, view: Mapping[str, Any] | None) -> str:
    form = (
        f'<form method="get" action="customers" role="search" class="filters">'
        f'<div><label for="customer_id">Customer id</label><br><input id="customer_id" name="customer_id" '
        f'value="{_e(customer_id)}" maxlength="128" required autocomplete="off"></div>'
        '<div><button type="submit">Look up</button></div></form>'
    )
    if view is None:
        return form
    latest = view.get("latest")
    if latest is None:
        why = (
            "No stored score for this customer: scores are written by batch scoring jobs."
            if view.get("scores_table")
            else "This deployment has no score table."
        )
        return form + f'<p role="status" id="lookup-result">{_e(why)} (customer {_e(customer_id)})</p>'
    reasons = (
        "<ol>"
        + "".join(
            f"<li>{_e(r['feature'])} = {_e(r['value'])}: {_e(r['effect'])} (contribution {r['contribution']:+.4f})</li>"
            for r in latest["reasons"]
        )
        + "</ol>"
        if latest["reasons"]
        else "<p>No reasons were computed for this risk level in the job that scored it.</p>"
    )
    facts = _facts(
        [
            ("Churn probability", f"{latest['churn_probability']:.4f}"),
            ("Risk", _risk(latest["risk_level"])),
            ("Predicted to churn", "yes" if latest["will_churn"] else "no"),
            ("Recommended action", _e(latest["recommended_action"])),
            ("Expected value of a call", _money(latest.get("expected_value"))),
            ("Scored", f"{_e(latest['scored_at'])} by job {_e(latest['job_id'])}, model {_e(latest['model_version'])}"),
        ]
    )
    history = view.get("history") or []
    hist = (
        _table(
            f"Predictions logged for this customer in the last {view.get('history_days')} days",
            ["when", "probability", "will churn", "model", "variant", "source"],
            [
                [
                    _e(h["ts"]),
                    _num(h["churn_probability"]),
                    _num(h["will_churn"]),
                    _e(h["model_version"]),
                    _e(h["variant"]),
                    _e(h["source"]),
                ]
                for h in history
            ],
            numeric=(1,),
        )
        if history
        else f"<p>No online prediction logged for this customer in the last {view.get('history_days')} days.</p>"
    )
    return (
        form
        + f'<section id="lookup-result" aria-labelledby="cust"><h2 id="cust">Customer {_e(customer_id)}</h2>{facts}'
        + f"<h2>Why</h2>{reasons}<h2>History</h2>{hist}</section>"
    )


# ----- the router -----------------------------------------------------------------------------------
def _safe_next(target: str | None) -> str:
    """A console page to return to after signing in: a page name (and query) relative to the console,
    never a path or URL elsewhere (an open redirect)."""
    if target and re.fullmatch(r"[a-z][a-z0-9.-]*(\?[^\\]*)?", target):
        return target
    return "call-list"


def _sign_in_form(next_url: str, error: str | None = None, status: int = 200, username: str = "") -> HTMLResponse:
    alert = f'<div class="error" role="alert">{_e(error)}</div>' if error else ""
    body = (
        f'{alert}<form method="post" action="sign-in"><input type="hidden" name="next" value="{_e(next_url)}">'
        '<p><label for="username">User name</label><br>'
        f'<input id="username" name="username" value="{_e(username)}" autocomplete="username" required></p>'
        '<p><label for="password">Password</label><br><input id="password" name="password" type="password" '
        'autocomplete="current-password" required></p><p><button type="submit">Sign in</button></p></form>'
    )
    return _page("Sign in", body, "", None, status)


def _new_password_form(username: str, session: str, next_url: str, error: str | None = None) -> HTMLResponse:
    alert = f'<div class="error" role="alert">{_e(error)}</div>' if error else ""
    body = (
        f"{alert}<p>Choose a new password to finish signing in.</p>"
        f'<form method="post" action="new-password"><input type="hidden" name="next" value="{_e(next_url)}">'
        f'<input type="hidden" name="username" value="{_e(username)}">'
        f'<input type="hidden" name="session" value="{_e(session)}">'
        '<p><label for="new_password">New password</label><br><input id="new_password" name="new_password" '
        'type="password" autocomplete="new-password" required></p>'
        '<p><button type="submit">Set password</button></p></form>'
    )
    return _page("Choose a password", body, "", None, 200)


async def _form(request: Request) -> dict[str, str]:
    body = (await request.body())[:10_000].decode("utf-8", errors="replace")
    return {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}


def console_router(reads: ConsoleReads, sign_in: ConsoleSignIn | None) -> APIRouter:
    """The console's pages. ``sign_in`` None: open pages (only `churn console` on 127.0.0.1 builds it so).

    Links, forms and redirects are relative to the console's folder: deployed, API Gateway's stage name
    comes before ``/console`` in the browser's address but not in the path the app sees."""
    router = APIRouter(prefix=PREFIX, include_in_schema=False)

    def user_of(request: Request) -> str | None:
        if sign_in is None:
            return LOCAL_USER
        return sign_in.sessions.user(request.cookies.get(SESSION_COOKIE))

    def signed_in(request: Request, render: Callable[[str], Response]) -> Response:
        user = user_of(request)
        if user is None:
            target = request.url.path.rsplit("/", 1)[-1] + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"sign-in?{urlencode({'next': target})}", status_code=303)
        return render(user)

    def session_started(answer: Mapping[str, Any], next_url: str) -> Response:
        response = RedirectResponse(_safe_next(next_url), status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            answer["access_token"],
            max_age=int(answer.get("expires_in", 3600)),
            httponly=True,
            secure=True,
            samesite="strict",
            path=None,  # the console's folder, whatever stage name API Gateway puts before it
        )
        return response

    @router.get("")
    def home() -> Response:
        return RedirectResponse("console/call-list", status_code=303)

    @router.get("/sign-in")
    def sign_in_page(next: str | None = None) -> Response:  # noqa: A002 - the query parameter's name
        if sign_in is None:
            return RedirectResponse(_safe_next(next), status_code=303)
        return _sign_in_form(_safe_next(next))

    @router.post("/sign-in")
    async def sign_in_submit(request: Request) -> Response:
        form = await _form(request)
        next_url = _safe_next(form.get("next"))
        if sign_in is None:
            return RedirectResponse(next_url, status_code=303)
        username, password = form.get("username", "").strip(), form.get("password", "")
        if not username or not password:
            return _sign_in_form(next_url, "Enter your user name and password.", 400, username)
        try:
            answer = sign_in.sign_in(username, password)
        except SignInRefusedError as e:
            return _sign_in_form(next_url, f"Sign-in refused: {e}.", 401, username)
        if "challenge" in answer:
            if answer["challenge"] != "NEW_PASSWORD_REQUIRED":
                return _sign_in_form(
                    next_url, f"Sign-in needs {answer['challenge']}, which this console does not offer.", 401
                )
            return _new_password_form(username, answer["session"] or "", next_url)
        return session_started(answer, next_url)

    @router.post("/new-password")
    async def new_password_submit(request: Request) -> Response:
        form = await _form(request)
        next_url = _safe_next(form.get("next"))
        if sign_in is None:
            return RedirectResponse(next_url, status_code=303)
        username, session = form.get("username", ""), form.get("session", "")
        try:
            answer = sign_in.set_new_password(username, session, form.get("new_password", ""))
        except SignInRefusedError as e:
            return _new_password_form(username, session, next_url, f"Password refused: {e}.")
        if "access_token" not in answer:
            return _sign_in_form(next_url, "Sign-in needs another step this console does not offer.", 401)
        return session_started(answer, next_url)

    @router.post("/sign-out")
    def sign_out() -> Response:
        response = RedirectResponse("sign-in", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path=None, secure=True, httponly=True, samesite="strict")  # type: ignore[arg-type]
        return response

    @router.get("/call-list")
    def call_list(
        request: Request,
        risk: Annotated[list[RiskLevel] | None, Query()] = None,
        reason: Annotated[str | None, Query(max_length=100)] = None,
        page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
        size: Annotated[int, Query(ge=1, le=200)] = 25,
    ) -> Response:
        levels = list(risk or ("high", "medium"))

        def render(user: str) -> Response:
            view = reads.call_list_page(levels, reason or None, page, size)
            return _page("Call list", _call_list_body(view, levels, reason or None), "call-list", user)

        return signed_in(request, render)

    @router.get("/call-list.csv")
    def call_list_export(
        request: Request,
        risk: Annotated[list[RiskLevel] | None, Query()] = None,
        reason: Annotated[str | None, Query(max_length=100)] = None,
    ) -> Response:
        levels = list(risk or ("high", "medium"))

        def render(user: str) -> Response:
            job, full = reads.call_list()
            if job is None or full is None:
                return error_page(404, "no batch job", "no batch scoring job has finished yet: nothing to export")
            chosen: CallList = full.select(levels, reason or None)
            name = f"call-list-{job['job_id']}-{'-'.join(sorted(levels))}{'-' + reason if reason else ''}.csv"
            safe_name = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
            return Response(
                call_list_csv(chosen.entries),
                media_type="text/csv; charset=utf-8",
                headers={**SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="{safe_name}"'},
            )

        return signed_in(request, render)

    @router.get("/customers")
    def customer(request: Request, customer_id: Annotated[str | None, Query(max_length=128)] = None) -> Response:
        cid = (customer_id or "").strip()

        def render(user: str) -> Response:
            view = reads.customer(cid) if cid else None
            status = 404 if view is not None and view.get("latest") is None else 200
            page = _page("Customer lookup", _customer_body(cid, view), "customers", user, status)
            return page

        return signed_in(request, render)

    @router.get("/models")
    def models(request: Request) -> Response:
        return signed_in(
            request, lambda user: _page("Models", _models_body(reads.models(), reads.evaluation()), "models", user)
        )

    @router.get("/drift")
    def drift(request: Request) -> Response:
        return signed_in(request, lambda user: _page("Drift", _drift_body(reads.drift()), "drift", user))

    @router.get("/canary")
    def canary(request: Request) -> Response:
        return signed_in(request, lambda user: _page("Canary", _canary_body(reads.canary()), "canary", user))

    @router.get("/retraining")
    def retraining(request: Request) -> Response:
        return signed_in(
            request, lambda user: _page("Retraining", _retraining_body(reads.retraining()), "retraining", user)
        )

    return router
