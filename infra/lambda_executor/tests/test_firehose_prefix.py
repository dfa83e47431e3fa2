"""Firehose S3 prefixes as AWS evaluates them (the LocalStack provider override uses this): the delivered object
lands under the partition the prediction-log reader lists, with no date folders of LocalStack's own."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "infra" / "lambda_executor" / "src"))

from local_lambda_executor.firehose_prefix import has_expressions, object_key, render_prefix  # noqa: E402

AT = datetime(2026, 5, 1, 7, 8, 9, tzinfo=UTC)


def test_the_template_prefix_becomes_the_day_partition_the_reader_lists():
    from churnguard.domain.prediction_log import partition_prefix
    from churnguard.local.template import load_template

    stream = load_template(REPO / "template.yaml")["Resources"]["PredictionLogStream"]["Properties"]
    prefix = stream["ExtendedS3DestinationConfiguration"]["Prefix"]
    assert has_expressions(prefix)
    key = object_key("churnguard-prediction-log", prefix, AT)
    assert key.startswith(partition_prefix(AT.date()))
    name = key[len(partition_prefix(AT.date())) :]
    assert name.startswith("churnguard-prediction-log-1-2026-05-01-07-08-09-") and "/" not in name


def test_timestamp_patterns_and_firehose_expressions():
    assert (
        render_prefix("a/!{timestamp:yyyy}/!{timestamp:MM}/!{timestamp:dd}/!{timestamp:HH}/", AT) == "a/2026/05/01/07/"
    )
    assert render_prefix("x/!{timestamp:yyyy-MM-dd'T'HH:mm:ss}", AT) == "x/2026-05-01'T'07:08:09"
    assert render_prefix("e/!{firehose:error-output-type}/", AT) == "e/processing-failed/"
    assert len(render_prefix("!{firehose:random-string}", AT)) == 11
    assert not has_expressions("plain/prefix/")
    with pytest.raises(ValueError, match="unknown Firehose prefix expression"):
        render_prefix("!{firehose:nonsense}", AT)
