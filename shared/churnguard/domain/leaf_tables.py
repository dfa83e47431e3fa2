"""Exact leaf look-ups for LightGBM forests: LightGBM's scores, several times faster.

Two engines, one for each kind of model the training recipe picks: ``LeafTables`` for forests of
small trees (Telco's 4-leaf model; below) and ``LeafMasks`` for trees of up to 64 leaves (the
Iranian data's 31-leaf model; see its docstring). Both take their decisions from lib_lightgbm.

Batch scoring spends most of its time in LightGBM walking each of the model's hundreds of 4-leaf
trees for each row (about 22 ns a tree on this machine). A small tree reads at most three
features, and only at the thresholds the model chose. Cut each feature at those thresholds and
every tree becomes a table indexed by the cells of its features: scoring a block is a
``searchsorted`` per feature, an index per group of trees that read the same features, and per
tree one gather and one add over the block, all in numpy without the GIL.

The result is LightGBM's, bit for bit (tests/unit/test_leaf_tables.py):

- **Cells.** A numeric feature is cut at every threshold the model uses (``x <= t`` goes left, as in
  LightGBM), plus one cell for ``[-1e-35f, 1e-35f]`` (LightGBM's zero: the C API reads such values
  as 0, and "zero as missing" splits send them the default way) and one for NaN. A categorical
  feature gets a cell per code (LightGBM truncates the value to an int), plus cells for negative
  codes, codes beyond the model's bitsets, and NaN.
- **Tables are filled by LightGBM.** One representative row per cell combination goes through
  lib_lightgbm (leaf index, one tree at a time), so missing-value rules, default directions and
  category bitsets are LightGBM's own, not a re-implementation; leaf values are read through the C
  API, not re-parsed from the text.
- **Sums.** Leaf values are added in tree order from 0.0, as ``GBDT::PredictRaw`` does, and the
  probability is ``1 / (1 + exp(-sigmoid * raw))`` with the C library's ``exp`` (``math.exp``), as
  the binary objective's ``ConvertOutput`` (numpy's vectorised ``exp`` differs in the last bit for
  about 3% of rows).
- **Checked while it runs.** ``BatchScorer`` also scores a sample of every block with LightGBM and
  falls back to it, logging why, if a single bit differs.

``LeafTables.build`` returns None (and the caller keeps LightGBM) when a model is out of scope:
not a binary sigmoid objective, or tables larger than ``max_cells`` (big trees over many
continuous features). (Linear trees never get here: ``NativeBooster`` cannot load them.)
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from churnguard.domain.booster import NativeBooster

log = logging.getLogger(__name__)

# LightGBM's kZeroThreshold, a C++ float literal (1e-35f), as the double it is compared as:
# the C API reads |x| <= this as 0, and "zero as missing" splits send it the default way.
K_ZERO = float(np.float32(1e-35))
_BELOW_ZERO = float(np.nextafter(-K_ZERO, -np.inf))  # cells (.., _BELOW_ZERO] and (_BELOW_ZERO, K_ZERO]
# Rows per step inside ``raw_score``: the per-group cell indices of one step stay in cache.
STEP_ROWS = 16384
MAX_CELLS = 1 << 22  # table entries over all trees (9 bytes each)


@dataclass(frozen=True)
class _Feature:
    """How one feature's values map to cells."""

    index: int
    thresholds: np.ndarray | None  # numeric: sorted cut points; None for a categorical feature
    n_codes: int = 0  # categorical: codes 0..n_codes-1 have a cell each

    @functools.cached_property
    def _code_cells(self) -> np.ndarray:
        """Categorical: cell of truncated value + 1 (-1 -> negative, k -> beyond the bitsets, k+1 -> NaN)."""
        k = self.n_codes
        return np.array([k, *range(k), k + 1, k + 2], dtype=np.intp)

    @property
    def n_cells(self) -> int:
        if self.thresholds is None:
            return self.n_codes + 3  # + negative, beyond the bitsets, NaN
        return len(self.thresholds) + 2  # + above the last threshold, NaN

    def representatives(self) -> np.ndarray:
        """One value per cell, in cell order."""
        if self.thresholds is None:
            return np.array([*range(self.n_codes), -1.0, float(self.n_codes), math.nan])
        t = self.thresholds
        return np.array([*t, np.nextafter(t[-1], np.inf), math.nan])

    def cells(self, x: np.ndarray) -> np.ndarray:
        if self.thresholds is None:
            k = self.n_codes
            t = np.trunc(x)  # LightGBM casts a categorical value to int
            t = np.where(np.isnan(t), k + 1.0, np.clip(t, -1.0, float(k)))
            return self._code_cells[(t + 1.0).astype(np.intp)]
        c = np.searchsorted(self.thresholds, x, side="left")  # cell i holds (t[i-1], t[i]]
        c[np.isnan(x)] = len(self.thresholds) + 1
        return c


@dataclass
class _Group:
    """Trees that read the same features share one cell index per row."""

    features: tuple[int, ...]
    maps: list[np.ndarray]  # per feature: the feature's global cell -> this group's cell
    strides: list[int]


@dataclass
class _ModelSplits:
    """What both exact engines read from a model: its trees, each tree's splits, and every feature's cells."""

    trees: list[dict[str, list[str]]]
    splits: list[list[tuple[int, float, bool]]]  # per tree: (feature, threshold, categorical) per node
    features: dict[int, _Feature]
    sigmoid: float

    @classmethod
    def read(cls, booster: NativeBooster, model_text: str) -> tuple[str, _ModelSplits | None]:
        """The model's splits, or (why not, None) when it is out of scope for exact look-ups."""
        header, trees = parse_model_text(model_text)
        objective = header.get("objective", "").split()
        if not objective or objective[0] != "binary" or not any(o.startswith("sigmoid:") for o in objective):
            return f"objective {' '.join(objective) or 'unknown'!r} is not a binary sigmoid", None
        sigmoid = float(next(o for o in objective if o.startswith("sigmoid:")).split(":", 1)[1])
        if header.get("num_tree_per_iteration", "1") != "1" or len(trees) != booster.num_iterations:
            return "not one tree per iteration", None

        numeric: dict[int, set[float]] = {}
        codes: dict[int, int] = {}
        splits: list[list[tuple[int, float, bool]]] = []
        for t in trees:
            nodes: list[tuple[int, float, bool]] = []
            if int(t["num_leaves"][0]) > 1:
                bounds = [int(x) for x in t.get("cat_boundaries", [])]
                words = [int(x) for x in t.get("cat_threshold", [])]
                for f_, th_, d_ in zip(t["split_feature"], t["threshold"], t["decision_type"], strict=False):
                    f, th, categorical = int(f_), float(th_), bool(int(d_) & 1)
                    nodes.append((f, th, categorical))
                    if categorical:
                        i = int(th)
                        bits = words[bounds[i] : bounds[i + 1]]
                        top = max(
                            (w * 32 + b + 1 for w, word in enumerate(bits) for b in range(32) if word >> b & 1),
                            default=1,
                        )
                        codes[f] = max(codes.get(f, 1), top)
                    else:
                        numeric.setdefault(f, set()).add(th)
            splits.append(nodes)
        if set(numeric) & set(codes):
            return "a feature split both as a number and as a category", None
        zero = {_BELOW_ZERO, K_ZERO}
        features = {f: _Feature(f, np.array(sorted(s | zero))) for f, s in numeric.items()}
        features.update({f: _Feature(f, None, n) for f, n in codes.items()})
        return "", cls(trees, splits, features, sigmoid)


class LeafTables:
    """Scores, probabilities and leaf indices of a LightGBM model by table look-up (see the module)."""

    def __init__(
        self,
        features: dict[int, _Feature],
        groups: list[_Group],
        group_of: list[int],
        values: list[np.ndarray],
        leaves: list[np.ndarray],
        sigmoid: float,
    ) -> None:
        self.features = features
        self.groups = groups
        self.group_of = group_of
        self.values = values  # per tree: leaf value per group cell
        self.leaf_of = leaves  # per tree: leaf index per group cell
        self.sigmoid = sigmoid
        self.n_trees = len(values)
        self._plans: dict[int, tuple[np.ndarray, list[tuple[int, int, np.ndarray]]]] = {}

    @classmethod
    def build(cls, booster: NativeBooster, model_text: str, max_cells: int = MAX_CELLS) -> LeafTables | None:
        """Tables for ``booster`` (loaded from ``model_text``), or None when the model is out of scope."""
        reason, tables = cls._build(booster, model_text, max_cells)
        if tables is None:
            log.info("leaf tables not used: %s", reason)
        return tables

    @classmethod
    def _build(cls, booster: NativeBooster, model_text: str, max_cells: int) -> tuple[str, LeafTables | None]:
        reason, model = _ModelSplits.read(booster, model_text)
        if model is None:
            return reason, None
        trees, splits, features, sigmoid = model.trees, model.splits, model.features, model.sigmoid
        zero = {_BELOW_ZERO, K_ZERO}

        by_features: dict[tuple[int, ...], list[int]] = {}
        for i, nodes in enumerate(splits):
            by_features.setdefault(tuple(sorted({f for f, _, _ in nodes})), []).append(i)
        total = 0
        plans: list[tuple[tuple[int, ...], list[int], list[_Feature]]] = []
        for fs, members in by_features.items():
            local = []
            for f in fs:  # a group's own cells: only the thresholds its trees use
                g = features[f]
                if g.thresholds is not None:
                    used = {th for i in members for ff, th, _ in splits[i] if ff == f}
                    g = _Feature(f, np.array(sorted(used | zero)))
                local.append(g)
            total += math.prod(g.n_cells for g in local) * len(members)
            if total > max_cells:
                return f"tables would exceed {max_cells} cells", None
            plans.append((fs, members, local))

        n_features = booster.num_feature()
        groups: list[_Group] = []
        group_of = [0] * len(trees)
        values: list[np.ndarray] = [np.empty(0)] * len(trees)
        leaves: list[np.ndarray] = [np.empty(0, dtype=np.uint8)] * len(trees)
        for fs, members, local in plans:
            sizes = [g.n_cells for g in local]
            strides = [math.prod(sizes[k + 1 :]) for k in range(len(sizes))]
            maps = [g.cells(features[g.index].representatives()).astype(np.intp) for g in local]
            grid = np.zeros((math.prod(sizes), n_features), dtype=np.float64)
            if fs:
                mesh = np.meshgrid(*[g.representatives() for g in local], indexing="ij")
                for f, m in zip(fs, mesh, strict=False):
                    grid[:, f] = m.ravel()
            for i in members:
                leaf = booster.predict_leaves(grid, start_iteration=i, num_iteration=1)[:, 0]
                values[i] = booster.leaf_values(i, int(trees[i]["num_leaves"][0]))[leaf]
                leaves[i] = leaf.astype(np.uint8 if leaf.max(initial=0) < 256 else np.int64)
                group_of[i] = len(groups)
            groups.append(_Group(fs, maps, strides))
        return "", cls(features, groups, group_of, values, leaves, sigmoid)

    # ----- scoring ---------------------------------------------------------------------------------
    def _cell_indices(self, X: np.ndarray) -> list[np.ndarray]:
        cells = {f: feat.cells(X[:, f]) for f, feat in self.features.items()}
        out = []
        for g in self.groups:
            idx = np.zeros(len(X), dtype=np.intp)
            for f, m, stride in zip(g.features, g.maps, g.strides, strict=False):
                c = m[cells[f]]
                idx += c * stride if stride != 1 else c
            out.append(idx)
        return out

    def raw_score(self, X: np.ndarray) -> np.ndarray:
        """Like LightGBM's ``raw_score=True``: the sum of each row's leaf values, in tree order."""
        X = np.asarray(X, dtype=np.float64)
        out = np.zeros(len(X), dtype=np.float64)
        for s in range(0, len(X), STEP_ROWS):
            o = out[s : s + STEP_ROWS]
            idx = self._cell_indices(X[s : s + STEP_ROWS])
            tmp = np.empty(len(o), dtype=np.float64)
            for values, g in zip(self.values, self.group_of, strict=False):
                np.take(values, idx[g], out=tmp)
                o += tmp
        return out

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Probabilities, like LightGBM's default output for a binary model."""
        return _probabilities(self.raw_score(X), self.sigmoid)

    def leaf_sums(self, X: np.ndarray, leaf_table: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """Per row, the sum over trees (in tree order) of ``leaf_table[offsets[t] + leaf]``: (n, columns).

        ``leaf_table`` holds one row per leaf of every tree (tree ``t``'s leaves start at
        ``offsets[t]``), e.g. path attributions. The sums equal adding each row's leaf rows one tree
        at a time, except for the sign of a zero: a column that is zero on every leaf of a tree is
        skipped, so a path attribution costs one gather per feature on the tree's paths.
        """
        X = np.asarray(X, dtype=np.float64)
        plan = self._plans.get(id(leaf_table))
        if plan is None or plan[0] is not leaf_table:
            steps = []
            for t, (leaf, g) in enumerate(zip(self.leaf_of, self.group_of, strict=False)):
                block = leaf_table[offsets[t] : offsets[t] + int(leaf.max(initial=0)) + 1]
                for k in np.flatnonzero((block != 0).any(axis=0)).tolist():
                    steps.append((g, k, np.ascontiguousarray(block[leaf, k])))
            plan = self._plans[id(leaf_table)] = (leaf_table, steps)
        out = np.zeros((leaf_table.shape[1], len(X)), dtype=np.float64)
        for s in range(0, len(X), STEP_ROWS):
            o = out[:, s : s + STEP_ROWS]
            idx = self._cell_indices(X[s : s + STEP_ROWS])
            tmp = np.empty(o.shape[1], dtype=np.float64)
            for g, k, values in plan[1]:
                np.take(values, idx[g], out=tmp)
                o[k] += tmp
        return out.T

    def predict_leaves(self, X: np.ndarray) -> np.ndarray:
        """The leaf each row reaches in each tree, (n, trees), like ``pred_leaf=True``."""
        X = np.asarray(X, dtype=np.float64)
        idx = self._cell_indices(X)
        out = np.empty((len(X), self.n_trees), dtype=np.int64)
        for t, (leaf, g) in enumerate(zip(self.leaf_of, self.group_of, strict=False)):
            out[:, t] = leaf[idx[g]]
        return out


class LeafMasks:
    """Scores, probabilities and leaf indices of a LightGBM model of deeper trees (up to 64 leaves), exactly.

    A tree of 16 to 64 leaves reads too many features at too many thresholds for one table over
    their cells (Iranian-churn trees of 31 leaves would need about 10^7 cells each). But each
    *feature* alone rules leaves out: for a cell of feature f, every node on f sends the row one way,
    so the leaves on the other side are impossible. The set of leaves still possible for each
    (tree, feature, cell) is a bit mask; a row's leaf is the one bit left after AND-ing the masks of
    its features' cells (the idea of QuickScorer: Lucchese et al., SIGIR 2015). Per block of rows:
    a ``searchsorted`` per feature, one gather and AND per feature over all trees at once, a
    popcount for the leaf number, and per tree one gather and add, in tree order.

    As for the tables, LightGBM decides: which way each node sends each cell is read from lib_lightgbm
    (the leaf of a row that reaches the node, with the node's feature set to the cell's
    representative), so missing values, LightGBM's zero and category bitsets follow its rules. The
    masks are checked against LightGBM on every probe row when built, and ``BatchScorer`` spot-checks
    every block, as for the tables.
    """

    MAX_LEAVES = 64

    def __init__(
        self,
        features: dict[int, _Feature],
        masks: dict[int, np.ndarray],
        values: np.ndarray,
        n_leaves: np.ndarray,
        sigmoid: float,
    ) -> None:
        self.features = features
        self.masks = masks  # per feature read by any tree: (its cells, trees) leaf masks
        self.values = values  # (trees, bits + 1): leaf values; column ``bits`` is NaN (no leaf: a bug)
        self.n_leaves = n_leaves
        self.sigmoid = sigmoid
        self.n_trees = len(values)
        self.step = int(min(STEP_ROWS, max(256, (1 << 20) // max(self.n_trees, 1))))

    @classmethod
    def build(cls, booster: NativeBooster, model_text: str) -> LeafMasks | None:
        """Masks for ``booster`` (loaded from ``model_text``), or None when the model is out of scope."""
        reason, masks = cls._build(booster, model_text)
        if masks is None:
            log.info("leaf masks not used, scoring with LightGBM: %s", reason)
        return masks

    @classmethod
    def _build(cls, booster: NativeBooster, model_text: str) -> tuple[str, LeafMasks | None]:
        reason, model = _ModelSplits.read(booster, model_text)
        if model is None:
            return reason, None
        n_leaves = np.array([int(t["num_leaves"][0]) for t in model.trees], dtype=np.int64)
        if n_leaves.max(initial=1) > cls.MAX_LEAVES:
            return f"trees of more than {cls.MAX_LEAVES} leaves", None
        bits = 8 * next(b for b in (1, 2, 4, 8) if n_leaves.max(initial=1) <= 8 * b)
        dtype = np.dtype(f"uint{bits}")
        n_trees, n_features = len(model.trees), booster.num_feature()
        masks = {f: np.full((g.n_cells, n_trees), np.iinfo(dtype).max, dtype=dtype) for f, g in model.features.items()}
        values = np.full((n_trees, bits + 1), np.nan)
        zero = {_BELOW_ZERO, K_ZERO}
        for i, tree in enumerate(model.trees):
            values[i, : n_leaves[i]] = booster.leaf_values(i, int(n_leaves[i]))
            for m in masks.values():  # a feature the tree does not read rules no leaf out
                m[:, i] = (1 << int(n_leaves[i])) - 1
            if n_leaves[i] == 1:
                continue
            # The tree's own cells per feature (only its thresholds), mapped from the feature's global cells.
            local: dict[int, _Feature] = {}
            for f in {f for f, _, _ in model.splits[i]}:
                g = model.features[f]
                if g.thresholds is not None:
                    g = _Feature(f, np.array(sorted({th for ff, th, _ in model.splits[i] if ff == f} | zero)))
                local[f] = g
            tree_masks, problem = _tree_masks(booster, i, tree, model.splits[i], local, n_features)
            if tree_masks is None:
                return f"tree {i}: {problem}", None
            for f, m in tree_masks.items():
                masks[f][:, i] = m.astype(dtype)[local[f].cells(model.features[f].representatives())]
        return "", cls(model.features, masks, values, n_leaves, model.sigmoid)

    # ----- scoring ---------------------------------------------------------------------------------
    def _leaf_numbers(self, X: np.ndarray) -> np.ndarray:
        """(trees, rows) uint8: the leaf each row reaches in each tree, for one step of rows."""
        acc: np.ndarray | None = None
        for f, m in self.masks.items():
            part = m.take(self.features[f].cells(X[:, f]), axis=0)  # (rows, trees)
            if acc is None:
                acc = part
            else:
                np.bitwise_and(acc, part, out=acc)
        if acc is None:  # every tree is a single leaf
            return np.zeros((self.n_trees, len(X)), dtype=np.uint8)
        np.subtract(acc, acc.dtype.type(1), out=acc)  # one bit 2^k - 1 -> k ones
        return np.ascontiguousarray(np.bitwise_count(acc).T)

    def raw_score(self, X: np.ndarray) -> np.ndarray:
        """Like LightGBM's ``raw_score=True``: the sum of each row's leaf values, in tree order."""
        X = np.asarray(X, dtype=np.float64)
        out = np.zeros(len(X), dtype=np.float64)
        for s in range(0, len(X), self.step):
            o = out[s : s + self.step]
            leaves = self._leaf_numbers(X[s : s + self.step])
            tmp = np.empty(len(o), dtype=np.float64)
            for t in range(self.n_trees):
                np.take(self.values[t], leaves[t], out=tmp)
                o += tmp
        return out

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Probabilities, like LightGBM's default output for a binary model."""
        return _probabilities(self.raw_score(X), self.sigmoid)

    def predict_leaves(self, X: np.ndarray) -> np.ndarray:
        """The leaf each row reaches in each tree, (n, trees), like ``pred_leaf=True``."""
        X = np.asarray(X, dtype=np.float64)
        out = np.empty((len(X), self.n_trees), dtype=np.int64)
        for s in range(0, len(X), self.step):
            out[s : s + self.step] = self._leaf_numbers(X[s : s + self.step]).T
        return out


def _tree_masks(
    booster: NativeBooster,
    i: int,
    tree: dict[str, list[str]],
    splits: list[tuple[int, float, bool]],
    local: dict[int, _Feature],
    n_features: int,
) -> tuple[dict[int, np.ndarray] | None, str]:
    """Per feature of tree ``i``: the mask of leaves still possible for each of its local cells.

    Level by level from the root, every node is probed with one row that reaches it, its feature set
    to each cell's representative; the leaf LightGBM returns says which way the node sends the cell
    (or that the cell never reaches it: an ancestor on the same feature sent it elsewhere).
    """
    left = [int(x) for x in tree["left_child"]]
    right = [int(x) for x in tree["right_child"]]
    under: dict[int, int] = {}  # node -> mask of the leaves below it (children < 0 are leaves ~child)

    def leaves_below(child: int) -> int:
        if child < 0:
            return 1 << ~child
        if child not in under:
            under[child] = leaves_below(left[child]) | leaves_below(right[child])
        return under[child]

    full = leaves_below(0)
    masks = {f: np.full(g.n_cells, full, dtype=np.uint64) for f, g in local.items()}
    reps = {f: g.representatives() for f, g in local.items()}
    level: list[tuple[int, np.ndarray]] = [(0, np.zeros(n_features))]  # (node, a row that reaches it)
    probes: list[np.ndarray] = []
    probe_leaves: list[np.ndarray] = []
    while level:
        grids = []
        for node, row in level:
            f = splits[node][0]
            grid = np.repeat(row[None, :], len(reps[f]), axis=0)
            grid[:, f] = reps[f]
            grids.append(grid)
        allgrid = np.vstack(grids)
        got = booster.predict_leaves(allgrid, start_iteration=i, num_iteration=1)[:, 0].astype(np.int64)
        probes.append(allgrid)
        probe_leaves.append(got)
        nxt: list[tuple[int, np.ndarray]] = []
        at = 0
        for (node, _row), grid in zip(level, grids, strict=True):
            f = splits[node][0]
            leaf_bits = np.left_shift(np.uint64(1), got[at : at + len(grid)].astype(np.uint64))
            at += len(grid)
            go_left = (leaf_bits & np.uint64(leaves_below(left[node]))) != 0
            go_right = (leaf_bits & np.uint64(leaves_below(right[node]))) != 0
            masks[f][go_left] &= np.uint64(~leaves_below(right[node]) & full)
            masks[f][go_right] &= np.uint64(~leaves_below(left[node]) & full)
            for child, way in ((left[node], go_left), (right[node], go_right)):
                if child >= 0 and way.any():  # a subtree no cell reaches holds no leaf any row gets
                    nxt.append((child, grid[int(np.flatnonzero(way)[0])]))
        level = nxt
    # Every probe row's leaf, from the masks, must be LightGBM's.
    for grid, got in zip(probes, probe_leaves, strict=True):
        acc = np.full(len(grid), full, dtype=np.uint64)
        for f, g in local.items():
            acc &= masks[f][g.cells(grid[:, f])]
        if not np.array_equal(np.bitwise_count(acc - np.uint64(1)).astype(np.int64), got):
            return None, "leaf masks disagree with LightGBM on a probe row"
    return masks, ""


def _probabilities(raw: np.ndarray, sigmoid: float) -> np.ndarray:
    """``1 / (1 + exp(-sigmoid * raw))`` with the C library's ``exp``, as the binary objective's ConvertOutput."""
    exp = math.exp
    return np.array([1.0 / (1.0 + exp(-sigmoid * v)) for v in raw.tolist()], dtype=np.float64)


def parse_model_text(model_text: str) -> tuple[dict[str, str], list[dict[str, list[str]]]]:
    """(header key -> value, [tree key -> values]) from a LightGBM model text."""
    header: dict[str, str] = {}
    trees: list[dict[str, list[str]]] = []
    current: dict[str, list[str]] | None = None
    for line in model_text.splitlines():
        if line.startswith("Tree="):
            current = {}
            trees.append(current)
        elif line.startswith("end of trees"):
            break
        elif "=" in line:
            k, v = line.split("=", 1)
            if current is None:
                header[k] = v
            else:
                current[k] = v.split()
    return header, trees
