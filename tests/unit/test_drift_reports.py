"""Reports: self-contained HTML (inline SVG, nothing fetched), every drifted feature plotted, text escaped."""

from html.parser import HTMLParser

import numpy as np

from churnguard.domain import reports
from churnguard.domain.drift import DriftReport, FeatureDrift
from churnguard.domain.evaluation import evaluate


class Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.refs = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.refs += [v for k, v in attrs if k in ("src", "href") and v]


def parse(html):
    p = Tags()
    p.feed(html)
    return p


def feature(name, drifted, psi=0.3):
    return FeatureDrift(
        name=name,
        kind="categorical",
        psi=psi,
        test="chi2",
        statistic=12.0,
        p_value=1e-9 if drifted else 0.4,
        drifted=drifted,
        rows=1000,
        bins=["a", "b", "missing"],
        reference=[0.5, 0.5, 0.0],
        recent=[0.8, 0.2, 0.0],
    )


def test_drift_page_plots_each_drifted_feature_and_escapes_text():
    report = DriftReport(
        decision="retrain",
        reasons=["<script>alert(1)</script> drifted"],
        rows=1000,
        thresholds={},
        tests=3,
        features=[feature("Contract", True), feature("gender", False, 0.01), feature("tenure", True)],
    )
    html = reports.drift_html(report.to_dict())
    p = parse(html)
    assert p.tags.count("svg") == 2 and "Contract: PSI 0.300" in html and "tenure: PSI" in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert p.refs == []  # nothing to fetch: the page works offline, straight from S3
    assert reports.to_json(report.to_dict()).startswith(b"{")


def test_evaluation_page_has_the_four_plots():
    rng = np.random.default_rng(0)
    y = rng.random(800) < 0.3
    p = np.clip(0.3 + 0.3 * y + rng.normal(0, 0.2, 800), 0.01, 0.99)
    result = evaluate(
        y, p, np.clip(p + rng.normal(0, 0.1, 800), 0.01, 0.99), feature_importance={"tenure": 2.0, "x<y": 1.0}
    )
    html = reports.evaluation_html(result.to_dict(), "v2", "v1")
    assert parse(html).tags.count("svg") == 4 and parse(html).refs == []
    for title in ("ROC curve", "Precision-recall curve", "Calibration (reliability)", "Feature importance (gain)"):
        assert title in html
    assert "x&lt;y" in html and "polyline" in html
