"""Drift and evaluation reports: JSON for machines, one self-contained HTML page for people.

Plots are inline SVG written here: no plotting library in the Lambda package, no external
scripts, fonts or images, so a report opens anywhere, offline, straight from S3.

    html = drift_html(report.to_dict())
    html = evaluation_html(evaluation.to_dict(), challenger="v2", champion="v1")
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

W, H = 420, 260
PAD_L, PAD_R, PAD_T, PAD_B = 44, 12, 14, 58
COLOURS = {"reference": "#8da0cb", "recent": "#fc8d62", "challenger": "#e7298a", "champion": "#1b9e77"}

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#222;max-width:1100px}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem}table{border-collapse:collapse;font-size:.9rem}
td,th{border-bottom:1px solid #ddd;padding:.25rem .6rem;text-align:left}.bad{color:#b00020;font-weight:600}
.ok{color:#1b7a3a;font-weight:600}.plots{display:flex;flex-wrap:wrap;gap:1rem}figure{margin:0}
figcaption{font-size:.85rem;color:#555}svg text{font-size:10px;fill:#333}
"""


def to_json(report: Mapping[str, Any]) -> bytes:
    return json.dumps(report, indent=2, sort_keys=True, allow_nan=False, default=str).encode()


# ----- SVG primitives ----------------------------------------------------------------------------
def _svg(body: str, title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img">'
        f"<title>{escape(title)}</title>{body}</svg>"
    )


def _legend(names: Sequence[str], x: float = PAD_L + 6, y: float = PAD_T + 4) -> str:
    out = []
    for i, name in enumerate(names):
        out.append(
            f'<rect x="{x}" y="{y + i * 13}" width="9" height="9" fill="{COLOURS.get(name, "#666")}"/>'
            f'<text x="{x + 13}" y="{y + 8 + i * 13}">{escape(name)}</text>'
        )
    return "".join(out)


def bar_chart(labels: Sequence[str], series: Mapping[str, Sequence[float]], title: str) -> str:
    """Grouped bars: one group per bin, one bar per series (shares in [0, 1])."""
    pw, ph = W - PAD_L - PAD_R, H - PAD_T - PAD_B
    top = max([max(v, default=0.0) for v in series.values()] + [1e-9])
    group = pw / max(len(labels), 1)
    bar = group * 0.8 / max(len(series), 1)
    parts = [
        f'<line x1="{PAD_L}" y1="{PAD_T + ph}" x2="{PAD_L + pw}" y2="{PAD_T + ph}" stroke="#999"/>',
        f'<text x="{PAD_L - 4}" y="{PAD_T + 8}" text-anchor="end">{top:.2f}</text>',
        f'<text x="{PAD_L - 4}" y="{PAD_T + ph}" text-anchor="end">0</text>',
    ]
    for i, label in enumerate(labels):
        for k, (name, values) in enumerate(series.items()):
            v = float(values[i]) if i < len(values) and values[i] is not None else 0.0
            h = ph * v / top
            x = PAD_L + i * group + group * 0.1 + k * bar
            parts.append(
                f'<rect x="{x:.1f}" y="{PAD_T + ph - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{COLOURS.get(name, "#666")}"><title>{escape(name)} {escape(label)}: {v:.3f}</title></rect>'
            )
        cx, cy = PAD_L + (i + 0.5) * group, PAD_T + ph + 8
        parts.append(
            f'<text x="{cx:.1f}" y="{cy}" text-anchor="end" transform="rotate(-40 {cx:.1f} {cy})">'
            f"{escape(label[:18])}</text>"
        )
    return _svg("".join(parts) + _legend(list(series)), title)


def line_chart(
    series: Mapping[str, Mapping[str, Sequence[float]]],
    title: str,
    x_label: str,
    y_label: str,
    diagonal: bool = False,
    markers: bool = False,
) -> str:
    """Lines on the unit square (ROC, precision-recall, reliability)."""
    pw, ph = W - PAD_L - PAD_R, H - PAD_T - PAD_B

    def sx(v: float) -> float:
        return PAD_L + pw * min(max(float(v), 0.0), 1.0)

    def sy(v: float) -> float:
        return PAD_T + ph * (1 - min(max(float(v), 0.0), 1.0))

    parts = [
        f'<rect x="{PAD_L}" y="{PAD_T}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>',
        f'<text x="{PAD_L + pw / 2}" y="{H - 22}" text-anchor="middle">{escape(x_label)}</text>',
        f'<text x="12" y="{PAD_T + ph / 2}" text-anchor="middle" transform="rotate(-90 12 {PAD_T + ph / 2})">'
        f"{escape(y_label)}</text>",
    ]
    for t in (0, 0.5, 1):
        parts.append(f'<text x="{sx(t):.1f}" y="{PAD_T + ph + 12}" text-anchor="middle">{t:g}</text>')
        parts.append(f'<text x="{PAD_L - 4}" y="{sy(t) + 3:.1f}" text-anchor="end">{t:g}</text>')
    if diagonal:
        parts.append(
            f'<line x1="{sx(0)}" y1="{sy(0)}" x2="{sx(1)}" y2="{sy(1)}" stroke="#bbb" stroke-dasharray="4 3"/>'
        )
    for name, pts in series.items():
        xs, ys = pts.get("x") or [], pts.get("y") or []
        if not xs:
            continue
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in zip(xs, ys, strict=False))
        colour = COLOURS.get(name, "#666")
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.8"/>')
        if markers:
            parts.extend(
                f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5" fill="{colour}"/>'
                for x, y in zip(xs, ys, strict=False)
            )
    return _svg("".join(parts) + _legend(list(series), x=PAD_L + pw - 80, y=PAD_T + ph - 30), title)


def horizontal_bars(values: Mapping[str, float], title: str) -> str:
    items = list(values.items())[:20]
    h = PAD_T + 14 * len(items) + 10
    top = max([v for _, v in items] + [1e-9])
    width = W - 150 - PAD_R
    parts = []
    for i, (name, v) in enumerate(items):
        y = PAD_T + i * 14
        parts.append(
            f'<text x="146" y="{y + 9}" text-anchor="end">{escape(name[:24])}</text>'
            f'<rect x="150" y="{y}" width="{width * v / top:.1f}" height="10" fill="{COLOURS["challenger"]}">'
            f"<title>{escape(name)}: {v:.4g}</title></rect>"
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{h}" viewBox="0 0 {W} {h}" role="img">'
        f"<title>{escape(title)}</title>{''.join(parts)}</svg>"
    )


def _page(title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{STYLE}</style></head><body><h1>{escape(title)}</h1>{body}</body></html>"
    )


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{digits}g}" if abs(v) < 1e-3 and v != 0 else f"{v:.{digits}f}"
    return escape(str(v))


# ----- drift -------------------------------------------------------------------------------------
def drift_html(report: Mapping[str, Any]) -> str:
    """The drift report (``DriftReport.to_dict()``) as a page: verdict, reasons, a table of every
    feature, and the reference-against-recent distribution of each drifted feature and of the score."""
    decision = report.get("decision", "?")
    cls = "ok" if decision == "ok" else "bad"
    body = [
        f'<p>Decision: <span class="{cls}">{escape(decision)}</span> &middot; champion '
        f"{escape(str(report.get('champion_version')))} &middot; {report.get('rows', 0)} recent predictions"
        + (
            f" &middot; window {escape(report['window'].get('start', ''))} to {escape(report['window'].get('end', ''))}"
            if report.get("window")
            else ""
        )
        + "</p>"
    ]
    body.append("<ul>" + "".join(f"<li>{escape(r)}</li>" for r in report.get("reasons", [])) + "</ul>")
    if report.get("notes"):
        body.append("<p>Notes:</p><ul>" + "".join(f"<li>{escape(n)}</li>" for n in report["notes"]) + "</ul>")
    perf = report.get("performance")
    if perf:
        body.append(
            "<h2>Performance on labelled predictions</h2><table><tr><th>status</th><th>labelled</th>"
            "<th>churned</th><th>ROC-AUC</th><th>training ROC-AUC</th><th>calibration error</th></tr>"
            f"<tr><td>{escape(perf['status'])}</td><td>{perf['labelled']}</td><td>{perf['positives']}</td>"
            f"<td>{_fmt(perf.get('roc_auc'))}</td><td>{_fmt(perf.get('reference_roc_auc'))}</td>"
            f"<td>{_fmt(perf.get('calibration_error'))}</td></tr></table>"
        )
    est = report.get("estimated")
    if est and est.get("roc_auc"):
        body.append(
            f"<h2>Performance estimated without labels</h2><p>{escape(est['status'])}: {escape(est['method'])}, "
            f"on {est['rows']} recent predictions (threshold {_fmt(est.get('threshold'))}); 95% intervals from "
            f"{est['draws']} simulated label sets</p><table><tr><th>metric</th><th>estimate</th><th>interval</th>"
            "<th>training</th></tr>"
            + "".join(
                f"<tr><td>{name}</td><td>{_fmt(m['estimate'])}</td><td>{_fmt(m['low'])} to {_fmt(m['high'])}</td>"
                f"<td>{_fmt(m.get('reference'))}</td></tr>"
                for name in ("roc_auc", "precision", "recall")
                if (m := est.get(name))
            )
            + "</table>"
        )
    rows = list(report.get("features") or [])
    if report.get("score"):
        rows.append(report["score"])
    if rows:
        body.append(
            "<h2>Every check</h2><table><tr><th>feature</th><th>PSI</th><th>test</th><th>statistic</th>"
            "<th>p-value</th><th>invalid values</th><th>drifted</th></tr>"
        )
        for f in sorted(rows, key=lambda f: -(f.get("psi") or 0)):
            mark = '<span class="bad">yes</span>' if f.get("drifted") else "no"
            body.append(
                f"<tr><td>{escape(f['name'])}</td><td>{_fmt(f.get('psi'))}</td><td>{escape(f['test'])}</td>"
                f"<td>{_fmt(f.get('statistic'))}</td><td>{_fmt(f.get('p_value'), 3)}</td>"
                f"<td>{f.get('invalid', 0)}</td><td>{mark}</td></tr>"
            )
        body.append("</table>")
    plotted = [f for f in rows if f.get("drifted")]
    if plotted:
        body.append('<h2>Drifted distributions</h2><div class="plots">')
        for f in plotted:
            title = f"{f['name']}: PSI {f['psi']:.3f}"
            chart = bar_chart(f["bins"], {"reference": f["reference"], "recent": f["recent"]}, title)
            body.append(f"<figure>{chart}<figcaption>{escape(title)}</figcaption></figure>")
        body.append("</div>")
    return _page("churnguard drift report", "".join(body))


# ----- evaluation --------------------------------------------------------------------------------
def evaluation_html(result: Mapping[str, Any], challenger: str, champion: str | None) -> str:
    """The evaluation (``Evaluation.to_dict()``) as a page: the gate, metrics side by side, and ROC,
    precision-recall, calibration and feature-importance plots."""
    passed = result.get("passed")
    body = [
        f'<p>Gate: <span class="{"ok" if passed else "bad"}">{"passed" if passed else "failed"}</span> &middot; '
        f"challenger {escape(challenger)} against {escape(champion or 'no champion')} on {result.get('rows')} "
        f"held-out rows ({result.get('positives')} churned)</p>"
    ]
    body.append(
        "<table><tr><th>check</th><th>result</th><th>detail</th></tr>"
        + "".join(
            f"<tr><td>{escape(c['name'])}</td><td "
            f'class="{"ok" if c["passed"] else "bad"}">{"pass" if c["passed"] else "fail"}'
            f"</td><td>{escape(c['detail'])}</td></tr>"
            for c in result.get("checks", [])
        )
        + "</table>"
    )
    ch, cp = result.get("challenger") or {}, result.get("champion") or {}
    body.append(
        "<h2>Metrics</h2><table><tr><th>metric</th><th>challenger</th><th>champion</th></tr>"
        + "".join(
            f"<tr><td>{m}</td><td>{_fmt(ch.get(m))}</td><td>{_fmt(cp.get(m)) if cp else 'n/a'}</td></tr>"
            for m in ("roc_auc", "pr_auc", "brier", "calibration_error", "f1")
        )
        + "</table>"
    )
    curves = result.get("curves") or {}
    models = {k: curves[k] for k in ("challenger", "champion") if k in curves}
    if models:
        body.append('<h2>Plots</h2><div class="plots">')
        for key, title, xl, yl, diag, mk in (
            ("roc", "ROC curve", "false positive rate", "true positive rate", True, False),
            ("pr", "Precision-recall curve", "recall", "precision", False, False),
            (
                "calibration",
                "Calibration (reliability)",
                "mean predicted probability",
                "observed churn rate",
                True,
                True,
            ),
        ):
            chart = line_chart({k: v[key] for k, v in models.items()}, title, xl, yl, diagonal=diag, markers=mk)
            body.append(f"<figure>{chart}<figcaption>{title}</figcaption></figure>")
        if curves.get("feature_importance"):
            chart = horizontal_bars(curves["feature_importance"], "Feature importance (gain)")
            body.append(f"<figure>{chart}<figcaption>Challenger feature importance (gain)</figcaption></figure>")
        body.append("</div>")
    return _page("churnguard evaluation report", "".join(body))
