"""The training recipe against stock LightGBM, on the real CSVs and on generated data, with nested CV.

For each data set: ``churn schema infer`` (``infer_schema``), then

- the recipe: ``train()`` with the default ``TrainingConfig`` (model search inside every outer
  training split, so its outer figure is a nested estimate), for each CV seed given;
- two stock configurations on the same outer folds: LightGBM's defaults (100 rounds) and 15 leaves,
  400 rounds, learning rate 0.03; native categoricals, no calibration (as the issue's table).

Data sets: the IBM Telco and Iranian CSVs beside the repository (skipped when absent), and two
generated ones from ``churnguard.local.synth``: strong interactions and a nearly additive signal.
Writes bench/model_selection.json and the README block between the model-selection markers.

    PYTHONPATH=shared:. .venv/bin/python -m bench.model_selection              # seeds 0
    PYTHONPATH=shared:. .venv/bin/python -m bench.model_selection --seeds 0,1,2 --only telco
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.emulated import ROOT

RESULTS = ROOT / "bench" / "model_selection.json"
DATA = ROOT.parent / "shared" / "data"
STOCK = {
    "lightgbm_defaults": ({}, 100),
    "15_leaves_400_rounds_lr_0.03": ({"num_leaves": 15, "learning_rate": 0.03}, 400),
}
GENERATED_ROWS = 5000


def datasets(only: set[str] | None) -> dict[str, tuple[Any, str, str]]:
    """name -> (frame of raw strings, target column, where it came from)."""
    from churnguard.domain.training import read_csv
    from churnguard.local.synth import generate_additive, generate_interacting

    out: dict[str, tuple[Any, str, str]] = {}
    for name, file in (("telco", "telco-customer-churn.csv"), ("iranian", "iranian-churn.csv")):
        if (DATA / file).exists() and (not only or name in only):
            out[name] = (read_csv(DATA / file), "Churn", f"../shared/data/{file}")
    for name, make in (("interacting", generate_interacting), ("additive", generate_additive)):
        if not only or name in only:
            out[name] = (make(GENERATED_ROWS, seed=11), "churned", f"local/synth.py {make.__name__}({GENERATED_ROWS})")
    return out


def stock(X: np.ndarray, y: np.ndarray, cats: list[int], seed: int) -> dict[str, dict[str, float]]:
    import lightgbm as lgb

    from churnguard.domain import classification as M
    from churnguard.domain.training import _folds

    out = {}
    for name, (params, rounds) in STOCK.items():
        aucs, briers = [], []
        for tr, te in _folds(y, 5, seed):
            p = {"objective": "binary", "verbose": -1, "num_threads": 1, "seed": seed, **params}
            b = lgb.train(p, lgb.Dataset(X[tr], y[tr].astype(float), categorical_feature=cats), rounds)
            prob = b.predict(X[te])
            aucs.append(M.roc_auc(y[te], prob))
            briers.append(M.brier(y[te], prob))
        out[name] = {"cv_roc_auc": round(float(np.mean(aucs)), 4), "brier": round(float(np.mean(briers)), 4)}
    return out


def measure(name: str, df: Any, target: str, seeds: list[int]) -> dict[str, Any]:
    from churnguard.domain.features import FeatureEncoder
    from churnguard.domain.schema_inference import infer_schema
    from churnguard.domain.training import TrainingConfig, split_labels, train

    schema = infer_schema(df, target).schema
    encoder = FeatureEncoder(schema)
    X, y = encoder.encode_frame(df), split_labels(df, schema)
    row: dict[str, Any] = {"rows": len(df), "positive_rate": round(float(y.mean()), 3), "recipe": {}, "stock": {}}
    row["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    row["load_avg"] = round(os.getloadavg()[0], 1)
    for seed in seeds:
        print(f"{name}: seed {seed} ...", file=sys.stderr, flush=True)
        row["stock"][str(seed)] = stock(X, y, encoder.categorical_indices, seed)
        started = time.perf_counter()
        result = train(df, schema, TrainingConfig(seed=seed))
        sel = result.model_selection
        row["recipe"][str(seed)] = {
            "cv_roc_auc": round(result.metrics["cv_roc_auc"], 4),
            "brier": round(result.metrics["brier"], 4),
            "chosen": sel["chosen"],
            "chosen_in_outer_folds": sel["chosen_in_outer_folds"],
            "rounds": sel["rounds"],
            "seconds": round(time.perf_counter() - started, 1),
        }
        best_stock = max(v["cv_roc_auc"] for v in row["stock"][str(seed)].values())
        row["recipe"][str(seed)]["margin_over_best_stock"] = round(
            row["recipe"][str(seed)]["cv_roc_auc"] - best_stock, 4
        )
        print(f"  {json.dumps(row['recipe'][str(seed)])}  stock {json.dumps(row['stock'][str(seed)])}", file=sys.stderr)
    return row


def table(results: dict[str, Any]) -> str:
    lines = [
        "| data set | LightGBM defaults | 15 leaves, 400 rounds, lr 0.03 | recipe (nested) | recipe Brier | chosen "
        "(served model; outer folds) | train s |",
        "|---|---|---|---|---|---|---|",
    ]
    order = ["telco", "iranian", "interacting", "additive"]
    for name, row in sorted(results["datasets"].items(), key=lambda kv: order.index(kv[0])):
        for seed, r in row["recipe"].items():
            s = row["stock"][seed]
            folds = ", ".join(
                f"{r['chosen_in_outer_folds'].count(c)}x {c}" for c in dict.fromkeys(r["chosen_in_outer_folds"])
            )
            lines.append(
                f"| {name} (seed {seed}) | {s['lightgbm_defaults']['cv_roc_auc']:.4f} | "
                f"{s['15_leaves_400_rounds_lr_0.03']['cv_roc_auc']:.4f} | **{r['cv_roc_auc']:.4f}** | "
                f"{r['brier']:.4f} | {r['chosen']}; {folds} | {r['seconds']:.0f} |"
            )
    return "\n".join(lines)


README_START, README_END = "<!-- model-selection:start -->", "<!-- model-selection:end -->"


def update_readme(results: dict[str, Any], readme: Path = ROOT / "README.md") -> None:
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        return
    loads = [d["load_avg"] for d in results["datasets"].values() if d.get("load_avg")]
    load = f", 1-minute load average {min(loads):.1f}-{max(loads):.1f} while it ran" if loads else ""
    note = (
        f"`make bench-models` (last run {results['generated_at']}, {results['machine']['cpus']} cores{load}; "
        "train s is wall time, so it varies with the load): 5-fold stratified CV ROC-AUC, shuffled with the "
        "seed shown; generated sets of 5,000 rows."
    )
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    readme.write_text(f"{head}{README_START}\n{note}\n\n{table(results)}\n{README_END}{tail}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", default="0", help="CV seeds, comma-separated")
    p.add_argument("--only", help="data sets, comma-separated: telco, iranian, interacting, additive")
    p.add_argument("--no-readme", action="store_true")
    a = p.parse_args(argv)
    seeds = [int(s) for s in a.seeds.split(",")]
    only = set(a.only.split(",")) if a.only else None
    results: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"datasets": {}}
    results["machine"] = {"cpus": os.cpu_count(), "load_avg_at_start": os.getloadavg()}
    for name, (df, target, source) in datasets(only).items():
        results["datasets"][name] = {"source": source, **measure(name, df, target, seeds)}
    results["generated_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    results["machine"]["load_avg_at_end"] = os.getloadavg()
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(table(results))
    if not a.no_readme:
        update_readme(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
