"""``churn``: the command line. Talks to AWS, LocalStack or the embedded emulator through the
usual ``AWS_ENDPOINT_URL``; bucket and table come from MODEL_BUCKET and REGISTRY_TABLE.

    churn schema infer --data customers.csv --target Churn > schema.yaml
    churn train --data ../shared/data/telco-customer-churn.csv --json
    churn models list
    churn promote v20261121-101500-a1b2c3 --expect-revision 7
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

from churnguard import __version__
from churnguard.domain.errors import (
    ArtifactIntegrityError,
    ChurnGuardError,
    ConfigurationError,
    DataValidationError,
    ModelUnavailableError,
    StorageError,
)
from churnguard.entrypoints.progress import ProgressDisplay
from churnguard.settings import get_settings


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str))


def _schema(path: str | None) -> Schema:
    from churnguard.domain.schema import Schema

    return Schema.load(path) if path else Schema.default()


def _services() -> Services:
    from churnguard.bootstrap import build_services, require_credentials

    services = build_services()  # first: a missing MODEL_BUCKET / REGISTRY_TABLE is named before credentials
    require_credentials()
    return services


def _read_data(source: str) -> bytes:
    """A CSV named on the command line (a path or s3://), refused with its name when it is not one."""
    from churnguard.bootstrap import build_object_store, require_credentials
    from churnguard.domain.csv_files import CSV_SNIFF_BYTES, csv_problem

    if source.startswith("s3://"):
        require_credentials()
    data = build_object_store(source).read(source)
    problem = csv_problem(data[:CSV_SNIFF_BYTES])
    if problem:
        raise DataValidationError(f"{source} {problem}")
    return data


# Every command's progress (training, batch jobs): one display with elapsed time and an ETA, on stderr.
_progress = ProgressDisplay()


# ----- commands ---------------------------------------------------------------------------
def cmd_schema_infer(a: argparse.Namespace) -> int:
    from churnguard.domain.schema_inference import infer_schema
    from churnguard.domain.training import read_csv

    inference = infer_schema(read_csv(a.data), target=a.target, positive_label=a.positive, id_column=a.id, name=a.name)
    schema = inference.schema
    text = schema.dump_yaml()
    if a.out:
        Path(a.out).write_text(text)
    if a.json:  # the schema, every column's role and reason, and the warnings, as one document
        _print_json(inference.to_dict())
    else:
        # The table goes to stdout unless the schema itself does (no --out): then to stderr.
        print(inference.table(), file=sys.stdout if a.out else sys.stderr)
        if not a.out:
            print(text, end="")
    for w in inference.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if a.out:
        print(f"wrote {a.out} ({len(schema.features)} features)", file=sys.stderr)
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
            from datetime import UTC, datetime

            from churnguard.bootstrap import build_promotion

            # As `churn promote` does: through the promote function's action, so the watch starts too.
            promoted = build_promotion(services).promote(
                summary["version"], reason="cli --promote", now=datetime.now(UTC)
            )
            summary["champion"] = promoted["version"]
            summary["status"] = "production: promoted to champion"
    else:
        result = train_from_bytes(data, schema, config, progress)
        summary = {
            "version": None,
            "status": "not registered (set MODEL_BUCKET and REGISTRY_TABLE to store and register the model)",
            "metrics": {k: v for k, v in result.metrics.items() if k != "folds"},
            "model_selection": result.model_selection,
            "warnings": result.warnings,
            "seconds": round(result.seconds, 2),
        }
    for w in summary["warnings"]:
        print(f"warning: {w}", file=sys.stderr)
    if a.json:
        _print_json(summary)
    else:
        m = summary["metrics"]
        if summary["version"] is None:
            print(f"version      {summary['status']}")
        else:
            print(f"version      {summary['version']}  ({summary['status']})")
        print(f"CV ROC-AUC   {m['cv_roc_auc']:.4f} ± {m['cv_roc_auc_std']:.4f}")
        print(f"CV PR-AUC    {m['cv_pr_auc']:.4f}")
        print(f"Brier        {m['brier']:.4f}")
        print(f"calib. error {m['calibration_error']:.4f}")
        print(f"threshold    {m['threshold']:.3f} ({m['threshold_method']}), F1 {m['f1']:.3f}")
        sel = summary["model_selection"]
        params = ", ".join(
            f"{k} {sel['params'][k]:g}"
            for k in ("num_leaves", "learning_rate", "min_data_in_leaf", "lambda_l2", "feature_fraction")
            if k in sel["params"]
        )
        print(f"model        {sel['chosen']}: {params}; {sel['rounds']} rounds")
        print(f"search       {', '.join(sel['chosen_in_outer_folds'])} chosen in the outer folds")
        for t in sel["trials"]:
            loss = "-" if t["log_loss"] is None else f"{t['log_loss']:.4f}"
            print(f"  {t['candidate']:<14} inner log-loss {loss:<7} {t['folds']} folds  {t['status']}")
        print(f"took         {summary['seconds']:.1f} s")
    return 0


def cmd_models_list(a: argparse.Namespace) -> int:
    s = _services()
    alias = s.registry.alias()
    champion = alias["version"] if alias else None
    versions = s.registry.list()
    if a.json:
        revision = alias["revision"] if alias else 0
        _print_json({"champion": champion, "revision": revision, "versions": [v.to_dict() for v in versions]})
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
    promotion = build_promotion(_services())
    _print_json(
        promotion.promote(a.version, reason=a.reason, now=datetime.now(UTC), expected_revision=a.expect_revision)
    )
    return 0


def cmd_models_gc(a: argparse.Namespace) -> int:
    """Remove model bundles no registry record names (a training run killed between storing and registering)."""
    from datetime import UTC, datetime, timedelta

    from churnguard.services.lifecycle import collect_orphaned_bundles

    s = _services()
    report = collect_orphaned_bundles(
        s.store, s.registry, older_than=timedelta(hours=a.older_than_hours), now=datetime.now(UTC), dry_run=a.dry_run
    )
    if a.json:
        _print_json(report)
        return 0
    verb = "would remove" if a.dry_run else "removed"
    print(f"{report['bundles']} stored bundles, {report['registered']} of them registered")
    for v in report["orphaned"]:
        print(f"{verb:<13}{v}")
    for v in report["recent"]:
        print(f"{'kept (recent)':<13} {v}")
    for v in report["unrecognised"]:
        print(f"{'left alone':<13} {v!r} (not a version id)")
    return 0


def cmd_rollback(a: argparse.Namespace) -> int:
    from churnguard.services.lifecycle import rollback

    _print_json(rollback(_services().registry, reason=a.reason))
    return 0


def cmd_predict(a: argparse.Namespace) -> int:
    from churnguard.bootstrap import build_provider

    payload = _payload(a)
    records = payload if isinstance(payload, list) else [payload]
    if not records or not all(isinstance(r, dict) for r in records):
        raise DataValidationError("give one customer as a JSON object, or a non-empty list of them")
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


def _require_port(host: str, port: int) -> None:
    from churnguard.local.ports import port_problem

    problem = port_problem(host, port)
    if problem:
        raise ConfigurationError(problem)


def cmd_serve(a: argparse.Namespace) -> int:
    from churnguard.bootstrap import build_prediction_log, build_provider
    from churnguard.domain.errors import ModelNotFoundError
    from churnguard.entrypoints.api import build_app
    from churnguard.local.server import ApiServer

    _require_port(a.host, a.port)
    services = _services()
    provider = build_provider(services)
    try:  # loaded now, so the first request is fast and a broken champion shows before serving
        champion = f"{provider.champion().version} (loaded)"
    except (ModelNotFoundError, ModelUnavailableError) as e:
        champion = f"none: {e}; POST /predict answers 503 until one is promoted (churn promote VERSION)"
    log = build_prediction_log(services)
    server = ApiServer(build_app(services, provider, prediction_log=log), a.host, a.port, prediction_log=log).start()
    print(_serve_banner(services, server.url, champion), flush=True)
    server.serve_until_stopped()
    print("stopped", file=sys.stderr)
    return 0


def _serve_banner(services: Services, url: str, champion: str) -> str:
    s, s3 = services.settings, services.clients.s3
    backend = s3.meta.endpoint_url
    where = backend if "amazonaws.com" not in backend else "AWS"
    if s.prediction_log_stream:
        log = f"Firehose stream {s.prediction_log_stream}"
    elif s.prediction_log_bucket:
        log = f"s3://{s.prediction_log_bucket}/predictions/dt=YYYY-MM-DD/ (written directly, as Firehose would)"
    else:
        log = "off (set PREDICTION_LOG_BUCKET, or PREDICTION_LOG_STREAM, to log predictions for drift checks)"
    lines = [
        f"churn serve {__version__}: {url}   docs {url}/docs and {url}/redoc; Ctrl-C stops",
        f"  backend         {where} (region {s3.meta.region_name})",
        f"  registry        {s.registry_table}; models in s3://{s.model_bucket}/{s.model_prefix}/",
        f"  champion        {champion}",
        f"  prediction log  {log}",
        f"  feedback        {'POST /feedback -> ' + s.outcomes_table if s.outcomes_table else 'off (OUTCOMES_TABLE)'}",
        "  stored scores   "
        + (f"GET /customers/{{id}}/score <- {s.batch.scores_table}" if s.batch.scores_table else "off (SCORES_TABLE)"),
    ]
    return "\n".join(lines)


def cmd_emulator(a: argparse.Namespace) -> int:
    """The embedded backend on its own: moto server with template.yaml's buckets and tables, until stopped."""
    from churnguard.local.emulator import Emulator
    from churnguard.local.server import sigterm_as_interrupt

    _require_port("127.0.0.1", a.port)
    emu = Emulator(port=a.port).start()
    exports = emu.export_lines()
    if a.env_file:
        Path(a.env_file).write_text(exports + "\n")
    print(
        f"# churn emulator: moto server on {emu.endpoint} with the buckets and tables template.yaml declares.\n"
        "# Paste these lines into another shell, then use churn there (churn train / serve / score ...).\n"
        "# State lives in memory: it is gone when this stops (Ctrl-C)."
        + (f" The same lines are in {a.env_file} (source it)." if a.env_file else "")
        + "\n"
        + exports,
        flush=True,
    )
    try:
        with sigterm_as_interrupt():
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        emu.stop()
        print("emulator stopped", file=sys.stderr)
    return 0


def cmd_drift(a: argparse.Namespace) -> int:
    """The drift check over the prediction log, as the scheduled function runs it, with the report written here."""
    from churnguard.bootstrap import build_drift_check

    summary = build_drift_check(_services(), reports_dir=a.out)()
    if a.json:
        _print_json(summary)
        return 0
    print(f"decision        {summary['decision']}")
    for reason in summary.get("reasons") or []:
        print(f"  - {reason}")
    if "rows" in summary:
        print(f"rows checked    {summary['rows']} (champion {summary['champion']})")
        print(f"drifted         {', '.join(summary['drifted_features']) or 'none'} (max PSI {summary['max_psi']})")
        print(f"performance     {summary['performance']}")
        if "retraining" in summary:
            r = summary["retraining"]
            print(f"retraining      {'started' if r.get('started') else 'not started: ' + str(r.get('reason'))}")
        print(f"report          {summary['html']}")
    return 0


def cmd_evaluate(a: argparse.Namespace) -> int:
    """The promotion gate for VERSION on held-out rows, as the state machine's Evaluate step, report written here."""
    from churnguard.bootstrap import build_evaluation

    summary = build_evaluation(_services(), reports_dir=a.out)(a.version, a.holdout)
    if a.json:
        _print_json(summary)
    else:
        _print_json({k: summary[k] for k in summary if k not in ("report", "html")})
        print(f"report: {summary['html']}")
    return 0


def cmd_demo(a: argparse.Namespace) -> int:
    from churnguard.entrypoints.api import build_app, build_console_app
    from churnguard.local.demo import run_demo

    _require_port(a.host, a.port)  # before the emulator and the training: a busy port costs a second
    if a.events:
        from churnguard.local.demo import run_events_demo

        return run_events_demo(host=a.host, port=a.port, serve=not a.no_serve, app_factory=build_app)
    return run_demo(
        data=a.data,
        host=a.host,
        port=a.port,
        serve=not a.no_serve,
        app_factory=build_app,
        rows=a.rows,
        console_factory=build_console_app,
        workdir=a.workdir,
        progress=_progress,
    )


def cmd_console(a: argparse.Namespace) -> int:
    """The console on 127.0.0.1, against AWS_ENDPOINT_URL (the emulator, LocalStack or AWS itself)."""
    import uvicorn

    from churnguard.entrypoints.api import build_console_app

    # Without a user pool the pages are open to whoever reaches the address: only loopback is allowed then.
    if not get_settings().console.user_pool_client_id and a.host not in ("127.0.0.1", "localhost", "::1"):
        raise ConfigurationError(
            f"the console without sign-in serves only 127.0.0.1, not {a.host}: "
            "set CONSOLE_USER_POOL_CLIENT_ID to serve it on other addresses"
        )
    _require_port(a.host, a.port)
    app = build_console_app(_services(), allow_anonymous=True)
    print(f"console on http://{a.host}:{a.port}/console (Ctrl-C stops)", file=sys.stderr, flush=True)
    uvicorn.run(app, host=a.host, port=a.port, log_level="warning")
    return 0


def _cutoffs(a: argparse.Namespace) -> list[Any]:
    from churnguard.domain.event_features import cutoff_range, parse_days, parse_moment

    if a.cutoffs and (a.every or a.start or a.end):
        raise DataValidationError("give either --cutoffs or --every with --from and --to, not both")
    if a.cutoffs:
        return [parse_moment(c) for c in a.cutoffs.split(",") if c.strip()]
    if not (a.every and a.start and a.end):
        raise DataValidationError(
            "name the cutoffs: --cutoffs 2026-01-01,2026-02-01 or --every 30d --from DATE --to DATE"
        )
    return cutoff_range(parse_moment(a.start), parse_moment(a.end), parse_days(a.every))


def cmd_features_build(a: argparse.Namespace) -> int:
    """A training CSV (one row per customer and cutoff), its schema and a report, from a feature definition."""
    from churnguard.bootstrap import build_training_set_builder
    from churnguard.domain.event_features import parse_moment, report_text

    cutoffs = _cutoffs(a)
    now = parse_moment(a.as_of) if a.as_of else None
    summary = build_training_set_builder()(a.definition, cutoffs, a.out, now)
    report = summary.pop("report_body")
    if a.json:
        _print_json(summary)
        return 0
    print(report_text(report))
    print(f"wrote {summary['training_csv']} ({summary['rows']} rows), {summary['schema']}, {summary['report']}")
    print(f"train on it: churn train --data {summary['training_csv']} --schema {summary['schema']}")
    print(f"took {summary['seconds']:.1f} s (engine {summary['engine_seconds']:.1f} s)")
    return 0


def cmd_features_refresh(a: argparse.Namespace) -> int:
    """What the FeatureRefresh schedule does: every active customer's features now, stored and scored."""
    from datetime import UTC, datetime

    from churnguard.bootstrap import build_feature_refresh
    from churnguard.domain.event_features import parse_moment

    now = parse_moment(a.now) if a.now else datetime.now(UTC)
    _print_json(build_feature_refresh(_services()).refresh(now, a.definition))
    return 0


def cmd_features_sql(a: argparse.Namespace) -> int:
    """The SQL a definition compiles to, against its data's column types."""
    from churnguard.bootstrap import build_feature_engine, build_object_store
    from churnguard.services.event_features import load_definition

    definition = load_definition(a.definition, build_object_store(a.definition))
    print(build_feature_engine(get_settings()).sql(definition), end="")
    return 0


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
            store_scores=a.store_scores,
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
    _progress.close()
    if status == "SUCCEEDED":
        _print_json(json.loads(desc.get("output") or "{}"))
        return 0
    record = jobs.get(job_id) if jobs else None
    reason = (record or {}).get("reason") or desc.get("cause") or desc.get("error") or status
    print(f"error: job {job_id} {status.lower()}: {reason}", file=sys.stderr)
    return EXIT_FAILED


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (1 to 65535)")
    return int(text)


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


def _whole_number(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number (0 or more)")
    return int(text)


def _number(text: str, what: str, low: float, high: float) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not low <= value <= high:  # NaN fails too
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
    return value


def _share(text: str) -> float:
    return _number(text, "a share from 0 to 1 (e.g. 0.1)", 0.0, 1.0)


def _seconds(text: str) -> float:
    return _number(text, "a number of seconds from 0.1 to 3600", 0.1, 3600.0)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="churn",
        description="Serverless churn prediction: train, register, promote, serve.",
        epilog="Backend: AWS_ENDPOINT_URL (empty: AWS itself), MODEL_BUCKET and REGISTRY_TABLE; "
        "`churn emulator` starts a local one and prints them.",
    )
    p.add_argument("--version", action="version", version=f"churn {__version__} (Python {sys.version.split()[0]})")
    p.add_argument("--debug", action="store_true", help="show the traceback of an unexpected error")
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
    s.add_argument("--json", action="store_true", help="print the schema and each column's role and reason as JSON")
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
    s = models.add_parser("gc", help="remove stored bundles that no registry record names (killed training runs)")
    s.add_argument(
        "--older-than-hours",
        type=float,
        default=1.0,
        help="only bundles last written this long ago (default 1; a run registers seconds after storing)",
    )
    s.add_argument("--dry-run", action="store_true", help="list what would be removed, remove nothing")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_models_gc)

    s = sub.add_parser("forget", help="erase a customer's outcomes, stored score and prediction-log records")
    s.add_argument("customer_id")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_forget)

    s = sub.add_parser("promote", help="make a version the champion")
    s.add_argument("version")
    s.add_argument("--reason", default="manual")
    s.add_argument(
        "--expect-revision",
        type=int,
        metavar="N",
        help="switch only if the champion alias is still at revision N (churn models list --json shows it): "
        "of several concurrent promoters exactly one wins, the others are told the champion moved",
    )
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
    s.add_argument("--share", type=_share, default=0.0, help="share of customers, 0..1 (e.g. 0.1)")
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
    s.add_argument("--alpha", type=_share, default=0.05, help="significance level, 0..1")
    s.add_argument("--json", dest="as_json", action="store_true")
    s.set_defaults(func=cmd_canary_report)

    s = sub.add_parser("serve", help="serve the API with uvicorn (logs predictions when a log is configured)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=_port, default=8000)
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser("console", help="serve the console (call list, customers, models, drift, canary) locally")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=_port, default=8080)
    s.set_defaults(func=cmd_console)

    s = sub.add_parser("demo", help="emulator + train + promote + log, drift, batch scores + serve, all local")
    s.add_argument(
        "--data", default=os.environ.get("DATA") or None, help="a churn CSV (default: generated Telco-like data)"
    )
    s.add_argument("--rows", type=_positive_int, default=5000, help="rows to generate when no --data")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=_port, default=8000)
    s.add_argument("--workdir", default=".demo", help="where the demo writes its reports and batch files")
    s.add_argument("--no-serve", action="store_true", help="stop after the tour instead of serving")
    s.add_argument(
        "--events",
        action="store_true",
        help="from generated event logs: build features, train, refresh, score customers by id",
    )
    s.set_defaults(func=cmd_demo)

    features = sub.add_parser(
        "features", help="features from raw event logs: training sets at cutoffs, the online refresh"
    ).add_subparsers(dest="features_cmd", required=True)
    s = features.add_parser("build", help="a training CSV + schema + report at cutoffs, point in time")
    s.add_argument("--definition", required=True, help="feature definition YAML (path or s3://bucket/key)")
    s.add_argument("--cutoffs", help="comma-separated dates or times (UTC unless an offset is given)")
    s.add_argument("--every", help="cutoff spacing, e.g. 30d (with --from and --to)")
    s.add_argument("--from", dest="start", help="first cutoff (with --every)")
    s.add_argument("--to", dest="end", help="last cutoff, included (with --every)")
    s.add_argument("--out", required=True, help="training CSV path or s3://bucket/key.csv (schema and report beside)")
    s.add_argument("--as-of", help="the build's now (default: now); records after it are rejected as future")
    s.add_argument("--json", action="store_true", help="print the summary as JSON")
    s.set_defaults(func=cmd_features_build)
    s = features.add_parser("refresh", help="every active customer's features now -> FEATURES_TABLE, scored")
    s.add_argument("--definition", help="feature definition (default: FEATURE_DEFINITION_URI)")
    s.add_argument("--now", help="the refresh's now (default: now)")
    s.set_defaults(func=cmd_features_refresh)
    s = features.add_parser("sql", help="print the SQL a definition compiles to")
    s.add_argument("--definition", required=True)
    s.set_defaults(func=cmd_features_sql)

    s = sub.add_parser(
        "emulator", help="a local AWS backend (moto server with template.yaml's resources); prints export lines"
    )
    s.add_argument("--port", type=_port, default=5050, help="port on 127.0.0.1 (default 5050)")
    s.add_argument("--env-file", help="also write the export lines to this file")
    s.set_defaults(func=cmd_emulator)

    s = sub.add_parser("drift", help="check the prediction log for drift against the champion; HTML report here")
    s.add_argument("--out", default="churn-reports", help="folder for the report (or s3://bucket/prefix)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_drift)

    s = sub.add_parser("evaluate", help="the promotion gate for a version on held-out rows; HTML report here")
    s.add_argument("version")
    s.add_argument("--holdout", required=True, help="labelled CSV the version was not trained on (file or s3://)")
    s.add_argument("--out", default="churn-reports", help="folder for the report (or s3://bucket/prefix)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_evaluate)

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
    s.add_argument(
        "--chunk-mb", type=_whole_number, default=0, help="chunk size in MB (default: BATCH_CHUNK_BYTES or 64)"
    )
    s.add_argument("--local", action="store_true", help="score here with the same code, no state machine")
    s.add_argument(
        "--store-scores",
        action="store_true",
        help="with --local: also store each customer's score (SCORES_TABLE), for GET /customers/{id}/score",
    )
    s.add_argument("--state-machine", help="ARN (default: BATCH_STATE_MACHINE_ARN)")
    s.add_argument("--job-id", help="execution name (re-using one follows that job instead of starting another)")
    s.add_argument("--no-follow", action="store_true", help="start the job and return")
    s.add_argument("--poll", type=_seconds, default=2.0, help="seconds between progress checks")
    s.add_argument("--quiet", action="store_true", help="no progress display")
    s.set_defaults(func=cmd_score)
    return p


# Exit codes: 0 done, 1 the work failed (a store, the network, a failed check), 2 bad input or a missing
# setting (the message says what to change), 130 interrupted, 141 the reader of a pipe went away.
EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 1, 2, 130, 141


def main(argv: list[str] | None = None) -> int:
    """Run one command. Whatever a user can type ends in one line on stderr naming the problem and the fix,
    never a traceback (``--debug`` shows the traceback of an unexpected error)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # argparse printed usage and the problem (2), or --help / --version (0)
        return int(e.code or 0) if not isinstance(e.code, str) else EXIT_BAD_INPUT
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, inside the handlers below, not at exit
        return code
    except DataValidationError as e:
        _error(e)
        if e.report is not None and getattr(args, "json", False):
            _print_json({"error": str(e).splitlines()[0], "report": e.report.to_dict()})
        return EXIT_BAD_INPUT
    except (StorageError, ModelUnavailableError, ArtifactIntegrityError) as e:
        _error(e)
        return EXIT_FAILED
    except ChurnGuardError as e:  # configuration, schema, unknown version, conflicts: the user can fix them
        _error(e)
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        # `churn predict ... | head`: the reader has what it wanted. Point stdout at /dev/null so the
        # interpreter's final flush does not complain, and exit as a tool killed by SIGPIPE does.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as e:  # a path the user typed: missing folder, no permission, disk full
        where = f" {e.filename}" if e.filename else ""
        _error(f"cannot use{where}: {e.strerror or e}")
        return EXIT_BAD_INPUT
    except Exception as e:
        if args.debug:
            raise
        library = type(e).__module__.split(".")[0]
        if library == "yaml":  # a schema or settings file the user gave: its line and column
            _error(f"a YAML file cannot be read: {' '.join(str(e).split())}")
            return EXIT_BAD_INPUT
        if library in ("botocore", "boto3"):
            _error(f"the AWS call failed: {e}")
            return EXIT_FAILED
        _error(f"unexpected {type(e).__name__}: {e} (a bug: run again with --debug for the traceback, and report it)")
        return EXIT_FAILED


def _error(e: BaseException | str) -> None:
    text = str(e).strip() or type(e).__name__
    print(f"error: {text}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
