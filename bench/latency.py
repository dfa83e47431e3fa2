"""Online latency, in one process, side by side: the real predict handler, the typical churn API,
and the floor. Paths are measured in interleaved rounds so the noise of a shared machine falls on
all of them alike; numbers are per call, in microseconds.

- online: functions/predict/app.py ``handler`` (Powertools, Mangum, the API Gateway event of
  events/predict.json, validation, features, calibrated score, TreeSHAP reasons), champion loaded
  from the S3/DynamoDB emulator (moto).
- naive: the path most churn APIs use: a scikit-learn Pipeline (OneHotEncoder + LGBMClassifier with
  the champion's parameters and number of trees) fed a one-row DataFrame built from the same body.
- floor: the cheapest FastAPI route through Mangum (the faster of ``def`` and ``async def``, a body
  parsed to a dict, a constant answer) + ``lightgbm.Booster.predict`` on a one-row array + the same
  Booster's ``pred_contrib=True`` (one thread: faster than its default), since the answer carries reasons.
  Timed as ONE loop doing all three per iteration (``floor_p50_us``), so it is the p50 of a sum, like
  the online figure; the parts are also timed alone and reported (``floor_parts_p50_us``) with their
  sum (``floor_sum_of_parts_p50_us``), for reference only.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from bench.emulated import ROOT, LambdaContext, champion_in_moto, load_predict_module

Sample = Callable[[], Any]


def _percentiles(ns: list[int]) -> dict[str, float]:
    a = np.asarray(ns, dtype=np.float64) / 1000.0
    return {
        "p50_us": round(float(np.percentile(a, 50)), 1),
        "p99_us": round(float(np.percentile(a, 99)), 1),
        "n": len(ns),
    }


def interleaved(
    paths: dict[str, tuple[Sample, int]], rounds: int = 10, warmup: int = 200
) -> dict[str, dict[str, float]]:
    """Time each path ``n`` times in total, split over ``rounds`` alternating rounds."""
    timings: dict[str, list[int]] = {name: [] for name in paths}
    for fn, _n in paths.values():
        for _ in range(warmup):
            fn()
    clock = time.perf_counter_ns
    for _ in range(rounds):
        for name, (fn, n) in paths.items():
            out = timings[name]
            for _ in range(max(1, n // rounds)):
                t0 = clock()
                fn()
                out.append(clock() - t0)
    return {name: _percentiles(ns) for name, ns in timings.items()}


def naive_pipeline(bundle: Any, csv_path: Any) -> Callable[[dict[str, Any]], float]:
    """The typical churn API's model: sklearn Pipeline(OneHotEncoder, LGBMClassifier) on a one-row DataFrame."""
    import pandas as pd
    from lightgbm import LGBMClassifier
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    from churnguard.domain.schema import CategoricalFeature, Schema

    schema = Schema.from_dict(bundle.metadata["schema"])
    cats = [f.name for f in schema.features if isinstance(f, CategoricalFeature)]
    nums = [f.name for f in schema.features if not isinstance(f, CategoricalFeature)]
    df = pd.read_csv(csv_path)
    for c in nums:
        df[c] = pd.to_numeric(df[c], errors="coerce")
    for c in cats:
        df[c] = df[c].astype(str)
    y = (df[schema.target].astype(str).str.strip() == schema.positive_label).astype(int)
    training = bundle.metadata.get("training", {})
    # The served model's own settings: the search's choice (the config holds only the base settings).
    params = dict(training.get("model_selection", {}).get("params") or training.get("config", {}).get("params", {}))
    params = {k: v for k, v in params.items() if k in ("learning_rate", "num_leaves", "max_depth", "min_data_in_leaf")}
    rounds = int(bundle.model_text.count("\nTree="))
    pipe = Pipeline(
        [
            (
                "encode",
                ColumnTransformer([("onehot", OneHotEncoder(handle_unknown="ignore"), cats)], remainder="passthrough"),
            ),
            ("model", LGBMClassifier(n_estimators=rounds, verbose=-1, **params)),
        ]
    )
    pipe.fit(df[cats + nums], y)
    columns = cats + nums

    def predict(body: dict[str, Any]) -> float:
        row = pd.DataFrame([body])[columns]
        for c in cats:
            row[c] = row[c].astype(str)
        return float(pipe.predict_proba(row)[0, 1])

    return predict


def floor_paths(bundle: Any, event: dict[str, Any], x: np.ndarray) -> dict[str, Sample]:
    import lightgbm as lgb
    from fastapi import FastAPI
    from mangum import Mangum

    sync_app, async_app = FastAPI(), FastAPI()

    @sync_app.post("/predict")
    def trivial_sync(body: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True}

    @async_app.post("/predict")
    async def trivial_async(body: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True}

    ctx = LambdaContext()
    sync_h, async_h = Mangum(sync_app, lifespan="off"), Mangum(async_app, lifespan="off")
    for h in (sync_h, async_h):
        assert h(event, ctx)["statusCode"] == 200
    booster = lgb.Booster(model_str=bundle.model_text)
    # The faster route (async under Mangum, which would start a thread per call for a def route).
    quick = interleaved(
        {"sync": (lambda: sync_h(event, ctx), 600), "async": (lambda: async_h(event, ctx), 600)}, rounds=3, warmup=50
    )
    fast_h = async_h if quick["async"]["p50_us"] <= quick["sync"]["p50_us"] else sync_h

    # Both Booster calls on one thread: LightGBM resets OpenMP's thread count on each call, so
    # alternating the default (2 here) with 1 would add a thread-pool change to every iteration.
    def floor() -> None:
        fast_h(event, ctx)
        booster.predict(x, num_threads=1)
        booster.predict(x, pred_contrib=True, num_threads=1)

    return {
        "floor": floor,
        "floor_route_sync": lambda: sync_h(event, ctx),
        "floor_route_async": lambda: async_h(event, ctx),
        "floor_booster_predict": lambda: booster.predict(x, num_threads=1),
        "floor_booster_contrib": lambda: booster.predict(x, pred_contrib=True, num_threads=1),
    }


def measure(
    bundle: Any,
    csv_path: Any,
    requests: int = 6000,
    rounds: int = 12,
    body: dict[str, Any] | None = None,
    schema_path: Any = None,
) -> dict[str, Any]:
    """``body``: the customer to send (default: events/predict.json's Telco customer); ``schema_path``:
    the API's schema (SCHEMA_PATH) when the model's is not the default Telco one."""
    event = json.loads((ROOT / "events" / "predict.json").read_text())
    if body is not None:
        event["body"] = json.dumps(body)
    body = json.loads(event["body"])
    ctx = LambdaContext()
    naive = naive_pipeline(bundle, csv_path)
    with champion_in_moto(bundle), open(os.devnull, "w") as devnull:
        if schema_path is not None:  # champion_in_moto restores the environment afterwards
            os.environ["SCHEMA_PATH"] = str(schema_path)
        # Powertools prints its EMF metrics to stdout on every invocation: keep the work, drop the text.
        with contextlib.redirect_stdout(devnull):
            module = load_predict_module()
            first = module.handler(event, ctx)
        answer = json.loads(first["body"])
        if first["statusCode"] != 200 or len(answer.get("reasons", [])) == 0:
            raise RuntimeError(f"the predict handler did not answer with reasons: {first}")
        predictor = module._provider.champion()
        x = predictor.encoder.encode_record(body)[None, :]
        paths: dict[str, tuple[Sample, int]] = {"online": (lambda: module.handler(event, ctx), requests)}
        paths["naive"] = (lambda: naive(body), max(1000, requests // 4))
        for name, fn in floor_paths(bundle, event, x).items():
            paths[name] = (fn, requests if name == "floor" else requests // 2)
        with contextlib.redirect_stdout(devnull):
            stats = interleaved(paths, rounds=rounds)
            last = module.handler(event, ctx)
        if json.loads(last["body"]) != answer:
            raise RuntimeError("the handler's answer changed during the run")
    route = min(stats["floor_route_sync"]["p50_us"], stats["floor_route_async"]["p50_us"])
    parts_sum = route + stats["floor_booster_predict"]["p50_us"] + stats["floor_booster_contrib"]["p50_us"]
    floor = stats["floor"]["p50_us"]
    online = stats["online"]
    return {
        "p50_us": online["p50_us"],
        "p99_us": online["p99_us"],
        "requests": online["n"],
        "naive_p50_us": stats["naive"]["p50_us"],
        "naive_p99_us": stats["naive"]["p99_us"],
        "floor_p50_us": round(floor, 1),
        "floor_p99_us": stats["floor"]["p99_us"],
        "floor_parts_p50_us": {k: v["p50_us"] for k, v in stats.items() if k.startswith("floor_")},
        "floor_sum_of_parts_p50_us": round(parts_sum, 1),
        "floor_method": "one timed loop: trivial FastAPI route via Mangum + Booster.predict + "
        "Booster.predict(pred_contrib=True) per iteration",
        "online_over_floor": round(online["p50_us"] / floor, 2),
        "naive_over_online": round(stats["naive"]["p50_us"] / online["p50_us"], 1),
        "reasons_in_response": len(answer["reasons"]),
        "model_trees": int(bundle.model_text.count("\nTree=")),
    }


if __name__ == "__main__":  # python -m bench.latency BUNDLE.json CSV
    from churnguard.domain.bundle import ModelBundle

    b = json.loads(open(sys.argv[1]).read())
    print(json.dumps(measure(ModelBundle(b["version"], b["model_text"], b["metadata"]), sys.argv[2]), indent=2))
