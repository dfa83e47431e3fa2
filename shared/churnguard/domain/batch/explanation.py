"""Batch reasons: path attributions from a (leaf -> per-feature change) table, and their JSON.

Each split on a customer's path credits its change in expected log-odds to the split feature (as in
``treeinterpreter``); a row's attribution is a table lookup per leaf, so reasons for whole blocks cost
a gather per tree. ``reasons_json`` writes the top reasons in the API's shape, column-wise.

    explainer = PathExplainer(BatchBooster(model_text))
    reasons = reasons_json(explainer.contributions(X), X, encoder, top=3)
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from churnguard.domain.booster import BatchBooster
from churnguard.domain.errors import ArtifactIntegrityError
from churnguard.domain.features import FeatureEncoder
from churnguard.domain.leaf_tables import parse_model_text


class PathExplainer:
    """Path attributions for a LightGBM model, as a (leaf -> per-feature change) table.

    For every leaf, the changes in node value along its path are credited to the split
    features; a row's attribution is the sum over trees of its leaves' rows of the table.
    Columns: one per feature plus the bias (the sum of root values), so each row sums to
    the raw score, as TreeSHAP's do. The table is read from the model text.
    """

    def __init__(self, booster: BatchBooster) -> None:
        self.booster = booster
        trees = _parse_trees(booster.model_text)
        self.n_features = booster.num_feature()
        tables: list[np.ndarray] = []
        offsets = [0]
        for tree in trees:
            tables.append(self._table(tree))
            offsets.append(offsets[-1] + len(tables[-1]))
        self.table = np.vstack(tables)
        self.offsets = np.asarray(offsets[:-1], dtype=np.int64)

    def _table(self, tree: dict[str, list[float]]) -> np.ndarray:
        F = self.n_features
        n_leaves = int(tree["num_leaves"][0])
        table = np.zeros((n_leaves, F + 1), dtype=np.float64)
        if n_leaves == 1:
            table[0, F] = tree["leaf_value"][0]
            return table
        internal, leaf = tree["internal_value"], tree["leaf_value"]
        table[:, F] = internal[0]
        stack: list[tuple[int, np.ndarray]] = [(0, np.zeros(F))]
        while stack:
            node, acc = stack.pop()
            f = int(tree["split_feature"][node])
            for child in (int(tree["left_child"][node]), int(tree["right_child"][node])):
                nxt = acc.copy()
                if child < 0:
                    nxt[f] += leaf[~child] - internal[node]
                    table[~child, :F] = nxt
                else:
                    nxt[f] += internal[child] - internal[node]
                    stack.append((child, nxt))
        return table

    def contributions(self, X: np.ndarray) -> np.ndarray:
        return self.from_leaves(self.booster.predict_leaves(X))

    def from_leaves(self, leaves: np.ndarray, block: int = 8192) -> np.ndarray:
        """Attributions (n, features + 1) from each row's leaf in each tree, an (n, trees) array."""
        n = len(leaves)
        idx = np.ascontiguousarray((leaves + self.offsets[None, :]).T)  # (trees, rows)
        out = np.empty((n, self.n_features + 1), dtype=np.float64)
        if n == 0:
            return out
        tmp = np.empty((min(block, n), self.n_features + 1), dtype=np.float64)
        for b in range(0, n, block):
            # Tree by tree, in tree order (the sums are the same, bit for bit, as adding each row's
            # (trees, features) gather): one (rows, features) gather per tree, no 3-D temporary.
            o, rows = out[b : b + block], idx[:, b : b + block]
            t_ = tmp[: o.shape[0]]
            np.take(self.table, rows[0], axis=0, out=o)
            for t in range(1, rows.shape[0]):
                np.take(self.table, rows[t], axis=0, out=t_)
                o += t_
        return out


def _parse_trees(model_text: str) -> list[dict[str, list[float]]]:
    keys = ("num_leaves", "split_feature", "left_child", "right_child", "leaf_value", "internal_value")
    trees = [{k: [float(x) for x in t[k]] for k in keys if k in t} for t in parse_model_text(model_text)[1]]
    if not trees:
        raise ArtifactIntegrityError("the model text holds no trees")
    return trees


def reasons_json(contrib: np.ndarray, X: np.ndarray, encoder: FeatureEncoder, top: int) -> np.ndarray:
    """JSON arrays of the top reasons per row, in the API's shape, built column-wise.

    ``contrib`` has one column per feature (a trailing bias column is ignored).
    """
    m = len(X)
    if m == 0:
        return np.empty(0, dtype=object)
    c = contrib[:, : encoder.n_features]
    mag = np.where(np.isnan(c), 0.0, np.abs(c))
    order = np.argsort(-mag, axis=1, kind="stable")[:, :top]
    rows = np.arange(m)
    S: Any = np.dtypes.StringDType()  # numpy's stubs do not type np.strings on StringDType arrays yet
    names = np.array([json.dumps(n) for n in encoder.names], dtype=S)
    out = np.full(m, "[", dtype=S)
    for k in range(order.shape[1]):
        j = order[:, k]
        ck = c[rows, j]
        present = mag[rows, j] > 0
        values: Any = np.empty(m, dtype=S)
        for f in np.unique(j).tolist():
            sel = j == f
            uniq, inv = np.unique(X[sel, f], return_inverse=True)
            decoded = np.array([json.dumps(encoder.decode(f, float(u))) for u in uniq], dtype=S)
            values[sel] = decoded[inv]
        effect = np.where(
            ck > 0, ',"effect":"increases risk","contribution":', ',"effect":"decreases risk","contribution":'
        )
        item = np.strings.add(
            np.strings.add(np.strings.add('{"feature":', names[j]), np.strings.add(',"value":', values)),
            np.strings.add(np.strings.add(effect.astype(S), np.round(ck, 4).astype(S)), "}"),
        )
        sep = "" if k == 0 else ","
        out = np.where(present, np.strings.add(np.strings.add(out, sep), item), out)
    return np.strings.add(out, "]").astype(object)
