"""``churn``: the command line. Talks to AWS, LocalStack or the embedded emulator through the
usual ``AWS_ENDPOINT_URL``; bucket and table come from MODEL_BUCKET and REGISTRY_TABLE.

    churn schema infer --data customers.csv --target Churn > schema.yaml
    churn train --data ../shared/data/telco-customer-churn.csv --json
    churn models list
    churn promote v20261121-101500-a1b2c3
    churn predict --json '{"tenure": 2, ...}'
    churn demo
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from churnguard.bootstrap import Services
    from churnguard.domain.schema import Schema

from churnguard.domain.errors import ChurnGuardError, ConfigurationError, DataValidationError
from churnguard.settings import get_settings


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str))


def _schema(path: str | None) -> Schema:
    from churnguard.domain.schema import Schema

    return Schema.load(path) if path else Schema.default()


def _services() -> Services:
    from churnguard.bootstrap import build_services

    return build_services()


def _read_data(source: str) -> bytes:
    from churnguard.bootstrap import build_object_store

    return build_object_store(source).read(source)


def _progress(stage: str, i: int, n: int) -> None:
    width = 20
    done = int(width * i / max(n, 1))
    sys.stderr.write(f"\r{stage:<18} [{'#' * done}{'.' * (width - done)}] {i}/{n}")
    if i >= n:
        sys.stderr.write("\n")
    sys.stderr.flush()


# ----- commands ---------------------------------------------------------------------------
def cmd_schema_infer(a: argparse.Namespace) -> int:
    from churnguard.domain.schema import Schema
    from churnguard.domain.training import read_csv

    schema, warnings = Schema.infer(
        read_csv(a.data), target=a.target, positive_label=a.positive, id_column=a.id, name=a.name
    )
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    text = schema.dump_yaml()
    if a.out:
        Path(a.out).write_text(text)
        print(f"wrote {a.out} ({len(schema.features)} features)", file=sys.stderr)
    else:
        print(text, end="")
    return 0


def cmd_schema_validate(a: argparse.Namespace) -> int:
    from churnguard.domain.training import read_csv

    report = _schema(a.schema).validate_frame(read_csv(a.data))
    if a.json:
        _print_json(report.to_dict())
    else:
        print(report.to_text())
    return 0 if report.ok else 1


def cmd_train(a: argparse.Namespace) -> int:
    import yaml

    from churnguard.domain.training import TrainingConfig
    from churnguard.services.lifecycle import train_and_register, train_from_bytes

    schema = _schema(a.schema)
    config = (
        TrainingConfig.from_dict(yaml.safe_load(Path(a.config).read_text()) or {}) if a.config else TrainingConfig()
    )
    data = _read_data(a.data)
    progress = None if a.quiet else _progress
    settings = get_settings()
    if settings.model_bucket and settings.registry_table:
        services = _services()
        summary = train_and_register(
            data, schema, config, services.store, services.registry, source=a.data, progress=progress
        )
        if a.promote:
            summary["champion"] = services.registry.promote(summary["version"], reason="cli --promote")["version"]
    else:
        result = train_from_bytes(data, schema, config, progress)
        summary = {
            "version": None,
            "status": "not registered (set MODEL_BUCKET and REGISTRY_TABLE to store and register the model)",
            "metrics": {k: v for k, v in result.metrics.items() if k != "folds"},
            "warnings": result.warnings,
            "seconds": round(result.seconds, 2),
        }
    for w in summary["warnings"]:
        print(f"warning: {w}", file=sys.stderr)
    if a.json:
        _print_json(summary)
    else:
        m = summary["metrics"]
        print(f"version      {summary['version']}  ({summary['status']})")
        print(f"CV ROC-AUC   {m['cv_roc_auc']:.4f} ± {m['cv_roc_auc_std']:.4f}")
        print(f"CV PR-AUC    {m['cv_pr_auc']:.4f}")
        print(f"Brier        {m['brier']:.4f}")
        print(f"calib. error {m['calibration_error']:.4f}")
        print(f"threshold    {m['threshold']:.3f} ({m['threshold_method']}), F1 {m['f1']:.3f}")
        print(f"took         {summary['seconds']:.1f} s")
    return 0


def cmd_models_list(a: argparse.Namespace) -> int:
    s = _services()
    alias = s.registry.alias()
    champion = alias["version"] if alias else None
    versions = s.registry.list()
    if a.json:
        _print_json({"champion": champion, "versions": [v.to_dict() for v in versions]})
        return 0
    print(f"{'version':<28} {'status':<11} {'cv_roc_auc':>10} {'brier':>7}  created")
    for v in versions:
        mark = " *" if v.version == champion else ""
        auc, brier = v.metrics.get("cv_roc_auc"), v.metrics.get("brier")
        print(
            f"{v.version:<28} {v.status:<11} {auc if auc is None else f'{auc:.4f}':>10} "
            f"{brier if brier is None else f'{brier:.4f}':>7}  {v.created_at}{mark}"
        )
    return 0


def cmd_models_show(a: argparse.Namespace) -> int:
    _print_json(_services().registry.get(a.version).to_dict())
    return 0


def cmd_forget(a: argparse.Namespace) -> int:
    from churnguard.bootstrap import build_forget

    report = build_forget(_services())(a.customer_id).to_dict()
    if a.json:
        _print_json(report)
    else:
        print(f"customer key   {report['customer_key']}")
        for store, n in report["removed"].items():
            print(f"{store:<15}{n} removed")
        for store, problem in report["failed"].items():
            print(f"{store:<15}FAILED: {problem}")
        print("not covered    " + "; ".join(report["not_covered"]))
    return 0 if report["complete"] else 1


def cmd_promote(a: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from churnguard.bootstrap import build_promotion

    # Through the promote function's own action: the watch after the promotion starts here too.
    _print_json(build_promotion(_services()).promote(a.version, reason=a.reason, now=datetime.now(UTC)))
    return 0


def cmd_rollback(a: argparse.Namespace) -> int:
    from churnguard.services.lifecycle import rollback

    _print_json(rollback(_services().registry, reason=a.reason))
    return 0


def cmd_predict(a: argparse.Namespace) -> int:
    from churnguard.bootstrap import build_provider

    payload = _payload(a)
    records = payload if isinstance(payload, list) else [payload]
    provider = build_provider(_services())
    predictor = provider.version(a.version) if a.version else provider.champion()
    _print_json(predictor.predict_records(records))
    return 0


def _payload(a: argparse.Namespace) -> Any:
    """The JSON given by --json, --file or standard input."""
    try:
        if a.json:
            return json.loads(a.json)
        if a.file:
            return json.loads(Path(a.file).read_text())
        return json.load(sys.stdin)
    except (OSError, ValueError) as e:
        raise DataValidationError(f"the customer JSON cannot be read: {e}") from e


def _one_record(a: argparse.Namespace) -> dict[str, Any]:
    payload = _payload(a)
    if not isinstance(payload, dict):
        raise DataValidationError("give one customer as a JSON object")
    return payload


def cmd_compare(a: argparse.Namespace) -> int:
    """Score one customer with every registered version (a version that cannot load says why)."""
    from churnguard.bootstrap import build_provider

    record = _one_record(a)
    services = _services()
    provider = build_provider(services)
    alias = services.registry.alias()
    canary = services.registry.canary()
    rows = []
    for mv in services.registry.list():
        row: dict[str, Any] = {
            "version": mv.version,
            "status": mv.status,
            "champion": bool(alias and alias["version"] == mv.version),
            "canary": bool(canary and canary["version"] == mv.version),
        }
        try:
            pred = provider.version(mv.version).predict_record(record, reasons=False)
            row.update(
                churn_probability=pred["churn_probability"],
                will_churn=pred["will_churn"],
                risk_level=pred["risk_level"],
            )
        except ChurnGuardError as e:
            row["error"] = str(e)
        rows.append(row)
    if a.as_json:
        _print_json(rows)
        return 0
    print(f"{'version':<28} {'status':<11} {'probability':>11} {'churn':>6}  risk")
    for r in rows:
        mark = " *champion" if r["champion"] else " (canary)" if r["canary"] else ""
        if "error" in r:
            print(f"{r['version']:<28} {r['status']:<11} error: {r['error']}{mark}")
        else:
            print(
                f"{r['version']:<28} {r['status']:<11} {r['churn_probability']:>11.4f} "
                f"{str(r['will_churn']):>6}  {r['risk_level']}{mark}"
            )
    return 0


def cmd_canary_set(a: argparse.Namespace) -> int:
    try:
        _print_json(_services().registry.set_canary(a.version, share=a.share, shadow=a.shadow, reason=a.reason))
    except ValueError as e:
        raise DataValidationError(str(e)) from e
    return 0


def cmd_canary_clear(a: argparse.Namespace) -> int:
    old = _services().registry.clear_canary()
    _print_json({"cleared": old})
    return 0


def cmd_canary_show(a: argparse.Namespace) -> int:
    _print_json({"canary": _services().registry.canary()})
    return 0


def cmd_canary_report(a: argparse.Namespace) -> int:
    """Per-variant results: outcomes joined point in time to the prediction log, with a significance test."""
    from datetime import date, timedelta

    from churnguard.bootstrap import build_outcome_store, build_prediction_log_reader
    from churnguard.domain.canary import compare_variants
    from churnguard.domain.outcomes import join_point_in_time

    services = _services()
    store = build_outcome_store(services)
    if store is None:
        raise ConfigurationError("set OUTCOMES_TABLE (the table of observed outcomes)")
    try:
        until = date.fromisoformat(a.until) if a.until else date.today()
        since = date.fromisoformat(a.since) if a.since else until - timedelta(days=90)
    except ValueError as e:
        raise DataValidationError(f"--since/--until must be dates written YYYY-MM-DD: {e}") from e
    outcomes = list(store.outcomes(since=since, until=until))
    reader = build_prediction_log_reader(services)
    report = compare_variants(join_point_in_time(reader.records(since, until), outcomes), alpha=a.alpha)
    report.update(since=since.isoformat(), until=until.isoformat(), outcomes=len(outcomes))
    if a.as_json:
        _print_json(report)
        return 0
    print(f"{len(outcomes)} outcomes observed {since} .. {until}")
    print(f"{'variant':<10} {'n':>6} {'errors':>7} {'error rate':>10} {'brier':>7} {'roc_auc':>8}  versions")
    for v, s in report["variants"].items():
        auc = "-" if s["roc_auc"] is None else f"{s['roc_auc']:.4f}"
        print(
            f"{v:<10} {s['n']:>6} {s['errors']:>7} {s['error_rate']:>10.4f} {s['brier']:>7.4f} {auc:>8}  "
            f"{','.join(s['model_versions'])}"
        )
    for v, t in report["tests"].items():
        p = "" if t.get("p_value") is None else f" (p = {t['p_value']:.4g}, {t['test']})"
        print(f"{v} vs champion: {t['verdict']}{p}")
    return 0


def cmd_serve(a: argparse.Namespace) -> int:
    import uvicorn

    from churnguard.entrypoints.api import build_app

    uvicorn.run(build_app(_services()), host=a.host, port=a.port, log_level="warning")
    return 0


def cmd_demo(a: argparse.Namespace) -> int:
    from churnguard.entrypoints.api import build_app
    from churnguard.local.demo import run_demo

    return run_demo(data=a.data, host=a.host, port=a.port, serve=not a.no_serve, app_factory=build_app, rows=a.rows)


def cmd_score(a: argparse.Namespace) -> int:
    """Batch scoring: start the state machine and follow it, or (--local) score a local file with the same code."""
    options = {"reasons": a.reasons, "reason_method": a.reason_method}
    if a.local:
        from churnguard.bootstrap import build_batch

        summary = build_batch(_services()).score_local(
            a.input,
            a.output,
            a.version,
            options,
            chunk_bytes=a.chunk_mb << 20,
            progress=None if a.quiet else _progress,
        )
        _print_json(summary)
        return 0
    return _score_remote(a, options)


def _score_remote(a: argparse.Namespace, options: dict[str, Any]) -> int:
    import uuid

    from churnguard.bootstrap import build_batch

    batch = build_batch(_services())
    arn = a.state_machine or batch.settings.state_machine_arn
    if not arn:
        raise ConfigurationError(
            "name the state machine: --state-machine ARN or BATCH_STATE_MACHINE_ARN "
            "(the stack's BatchScoringStateMachineArn output)"
        )
    for uri in (a.input, a.output):
        if not uri.startswith("s3://"):
            raise DataValidationError(f"{uri!r} is not an s3:// location (use --local for local files)")
    job_id = a.job_id or time.strftime("score-%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    job: dict[str, Any] = {"input": a.input, "output": a.output.rstrip("/"), "options": options}
    if a.version:
        job["model_version"] = a.version
    if a.chunk_mb:
        job["chunk_bytes"] = a.chunk_mb << 20
    runner = batch.job_runner(arn)
    execution = runner.start(job, name=job_id)
    print(f"job {job_id} started: {execution}", file=sys.stderr)
    if a.no_follow:
        _print_json({"job_id": job_id, "execution_arn": execution})
        return 0
    io, jobs = batch.io, batch.jobs
    while True:
        desc = runner.describe(execution)
        status = desc["status"]
        if status != "RUNNING":
            break
        record = jobs.get(job_id) if jobs else None
        if record and record.get("chunks") and not a.quiet:
            done = io.count(f"{job['output']}/scores/")
            _progress("scoring chunks", min(done, int(record["chunks"])), int(record["chunks"]))
        time.sleep(a.poll)
    if not a.quiet:
        sys.stderr.write("\n")
    if status == "SUCCEEDED":
        _print_json(json.loads(desc.get("output") or "{}"))
        return 0
    record = jobs.get(job_id) if jobs else None
    reason = (record or {}).get("reason") or desc.get("cause") or desc.get("error") or status
    print(f"error: job {job_id} {status.lower()}: {reason}", file=sys.stderr)
    return 2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="churn", description="Serverless churn prediction: train, register, promote, serve."
    )
    sub = p.add_subparsers(dest="command", required=True)

    schema = sub.add_parser("schema", help="infer or check a data contract").add_subparsers(
        dest="schema_cmd", required=True
    )
    s = schema.add_parser("infer", help="write a schema for a churn CSV")
    s.add_argument("--data", required=True)
    s.add_argument("--target", required=True)
    s.add_argument("--positive", help="the label meaning 'churned' (guessed if omitted)")
    s.add_argument("--id", help="the id column (guessed if omitted)")
    s.add_argument("--name", default="churn")
    s.add_argument("--out", help="file to write (default: stdout)")
    s.set_defaults(func=cmd_schema_infer)
    s = schema.add_parser("validate", help="check a CSV against a schema")
    s.add_argument("--data", required=True)
    s.add_argument("--schema")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_schema_validate)

    s = sub.add_parser("train", help="train, store and register a candidate")
    s.add_argument("--data", required=True, help="CSV file or s3://bucket/key")
    s.add_argument("--schema", help="schema YAML (default: the Telco schema)")
    s.add_argument("--config", help="training settings YAML (see TrainingConfig)")
    s.add_argument("--json", action="store_true", help="print the result as JSON")
    s.add_argument("--promote", action="store_true", help="promote the new version straight away")
    s.add_argument("--quiet", action="store_true", help="no progress display")
    s.set_defaults(func=cmd_train)

    models = sub.add_parser("models", help="the registry").add_subparsers(dest="models_cmd", required=True)
    s = models.add_parser("list")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_models_list)
    s = models.add_parser("show")
    s.add_argument("version")
    s.set_defaults(func=cmd_models_show)

    s = sub.add_parser("forget", help="erase a customer's outcomes, stored score and prediction-log records")
    s.add_argument("customer_id")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_forget)

    s = sub.add_parser("promote", help="make a version the champion")
    s.add_argument("version")
    s.add_argument("--reason", default="manual")
    s.set_defaults(func=cmd_promote)
    s = sub.add_parser("rollback", help="restore the previous champion")
    s.add_argument("--reason", default="rollback")
    s.set_defaults(func=cmd_rollback)

    s = sub.add_parser("predict", help="score customers (JSON object or list) with the champion")
    s.add_argument("--json", help="inline JSON")
    s.add_argument("--file", help="JSON file (default: stdin)")
    s.add_argument("--version", help="a named version instead of the champion")
    s.set_defaults(func=cmd_predict)

    s = sub.add_parser("compare", help="score one customer with every registered version")
    s.add_argument("--json", help="the customer as inline JSON")
    s.add_argument("--file", help="JSON file (default: stdin)")
    s.add_argument("--as-json", dest="as_json", action="store_true", help="print the result as JSON")
    s.set_defaults(func=cmd_compare)

    canary = sub.add_parser("canary", help="a challenger on live traffic: canary share or shadow").add_subparsers(
        dest="canary_cmd", required=True
    )
    s = canary.add_parser("set", help="VERSION answers --share of customers (sticky), or scores unseen with --shadow")
    s.add_argument("version")
    s.add_argument("--share", type=float, default=0.0, help="share of customers, 0..1 (e.g. 0.1)")
    s.add_argument("--shadow", action="store_true", help="score every request with VERSION, answer with the champion")
    s.add_argument("--reason", default="manual")
    s.set_defaults(func=cmd_canary_set)
    s = canary.add_parser("clear", help="stop the canary or shadow")
    s.set_defaults(func=cmd_canary_clear)
    s = canary.add_parser("show", help="the current canary or shadow")
    s.set_defaults(func=cmd_canary_show)
    s = canary.add_parser("report", help="per-variant results from feedback, with a significance test")
    s.add_argument("--since", help="first day (YYYY-MM-DD; default: 90 days before --until)")
    s.add_argument("--until", help="last day (YYYY-MM-DD; default: today)")
    s.add_argument("--alpha", type=float, default=0.05)
    s.add_argument("--json", dest="as_json", action="store_true")
    s.set_defaults(func=cmd_canary_report)

    s = sub.add_parser("serve", help="serve the API with uvicorn")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser("demo", help="emulator + train + promote + serve, all local")
    s.add_argument(
        "--data", default=os.environ.get("DATA") or None, help="a churn CSV (default: generated Telco-like data)"
    )
    s.add_argument("--rows", type=int, default=5000, help="rows to generate when no --data")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--no-serve", action="store_true", help="stop after the first prediction")
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("score", help="batch scoring: a CSV (or folder of CSVs) in S3, or a local file with --local")
    s.add_argument(
        "--input", required=True, help="s3://bucket/key.csv or s3://bucket/prefix/ (a file or folder with --local)"
    )
    s.add_argument(
        "--output",
        required=True,
        help="s3://bucket/prefix for scores/, errors/ and _job/summary.json (a folder with --local)",
    )
    s.add_argument("--version", help="a named model version instead of the champion")
    s.add_argument(
        "--reasons",
        default="high",
        choices=["all", "medium", "high", "none"],
        help="lowest risk level whose rows get reasons (default: high)",
    )
    s.add_argument(
        "--reason-method",
        default="path",
        choices=["path", "treeshap"],
        help="path attributions (fast) or exact TreeSHAP (~350 us a row)",
    )
    s.add_argument("--chunk-mb", type=int, default=0, help="chunk size in MB (default: BATCH_CHUNK_BYTES or 64)")
    s.add_argument("--local", action="store_true", help="score here with the same code, no state machine")
    s.add_argument("--state-machine", help="ARN (default: BATCH_STATE_MACHINE_ARN)")
    s.add_argument("--job-id", help="execution name (re-using one follows that job instead of starting another)")
    s.add_argument("--no-follow", action="store_true", help="start the job and return")
    s.add_argument("--poll", type=float, default=2.0, help="seconds between progress checks")
    s.add_argument("--quiet", action="store_true", help="no progress display")
    s.set_defaults(func=cmd_score)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except DataValidationError as e:
        print(f"error: {e}", file=sys.stderr)
        if e.report is not None and getattr(args, "json", False):
            _print_json({"error": str(e).splitlines()[0], "report": e.report.to_dict()})
        return 2
    except (ChurnGuardError, ConfigurationError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
