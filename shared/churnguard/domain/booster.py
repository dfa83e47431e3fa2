"""LightGBM scoring through its C library, without the ``lightgbm`` Python package.

``import lightgbm`` pulls in scipy (about 140 MB installed) and, when they are installed, pandas
and scikit-learn, which makes a predict package too big for Lambda and its cold start slow.
Scoring needs none of that: ``lib_lightgbm.so`` (shipped inside the lightgbm wheel) loads a
text model and predicts through a small C API. This module calls it with ctypes.

``NativeBooster`` gives the same numbers as ``lightgbm.Booster.predict`` (the same C functions
compute them; tests/unit/test_booster.py compares both) and adds a one-row fast path
(``LGBM_BoosterPredictForMatSingleRowFast``) whose configuration is parsed once per model, so a
request pays one C call for the score and one for the TreeSHAP contributions.

    booster = NativeBooster(model_text)
    p = booster.predict(X)                      # like lightgbm.Booster.predict(X)
    phi = booster.predict(X, pred_contrib=True)  # like pred_contrib=True: n_features + 1 columns
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import threading
from pathlib import Path

import numpy as np

from churnguard.domain.errors import ArtifactIntegrityError

# Constants from LightGBM's c_api.h.
_DTYPE_FLOAT64 = 1
_PREDICT_NORMAL = 0
_PREDICT_RAW_SCORE = 1
_PREDICT_LEAF_INDEX = 2
_PREDICT_CONTRIB = 3
_ALL_ITERATIONS = -1  # what Booster.predict uses for a model loaded from text (best_iteration == -1)

ENV_LIB_PATH = "LIGHTGBM_LIB_PATH"  # optional override; the default is the copy inside the lightgbm wheel

_lib: ctypes.CDLL | None = None
_lib_lock = threading.Lock()


def find_library() -> Path:
    """Where lib_lightgbm.so is: the lightgbm package's lib/ folder, found without importing lightgbm."""
    override = os.environ.get(ENV_LIB_PATH)
    if override:
        return Path(override)
    spec = importlib.util.find_spec("lightgbm")  # locates the package; does not run its __init__
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the lightgbm package (for its lib_lightgbm.so) is not installed")
    for folder in spec.submodule_search_locations:
        for name in ("lib_lightgbm.so", "lib_lightgbm.dylib", "lib_lightgbm.dll"):
            candidate = Path(folder) / "lib" / name
            if candidate.exists():
                return candidate
    raise ImportError(f"lib_lightgbm not found under {list(spec.submodule_search_locations)}")


def _load() -> ctypes.CDLL:
    global _lib
    with _lib_lock:
        if _lib is None:
            lib = ctypes.CDLL(str(find_library()))
            vp, i32 = ctypes.c_void_p, ctypes.c_int32
            pi64, pdbl = ctypes.POINTER(ctypes.c_int64), ctypes.POINTER(ctypes.c_double)
            lib.LGBM_GetLastError.restype = ctypes.c_char_p
            lib.LGBM_GetLastError.argtypes = []
            lib.LGBM_BoosterLoadModelFromString.argtypes = [
                ctypes.c_char_p,
                ctypes.POINTER(ctypes.c_int),
                ctypes.POINTER(vp),
            ]
            lib.LGBM_BoosterFree.argtypes = [vp]
            lib.LGBM_BoosterGetNumFeature.argtypes = [vp, ctypes.POINTER(ctypes.c_int)]
            lib.LGBM_BoosterGetNumClasses.argtypes = [vp, ctypes.POINTER(ctypes.c_int)]
            lib.LGBM_BoosterPredictForMat.argtypes = [
                vp,
                vp,
                ctypes.c_int,
                i32,
                i32,
                ctypes.c_int,
                ctypes.c_int,
                ctypes.c_int,
                ctypes.c_int,
                ctypes.c_char_p,
                pi64,
                pdbl,
            ]
            lib.LGBM_BoosterPredictForMatSingleRowFastInit.argtypes = [
                vp,
                ctypes.c_int,
                ctypes.c_int,
                ctypes.c_int,
                ctypes.c_int,
                i32,
                ctypes.c_char_p,
                ctypes.POINTER(vp),
            ]
            lib.LGBM_BoosterPredictForMatSingleRowFast.argtypes = [vp, vp, pi64, pdbl]
            lib.LGBM_FastConfigFree.argtypes = [vp]
            for fn in (
                lib.LGBM_BoosterLoadModelFromString,
                lib.LGBM_BoosterFree,
                lib.LGBM_BoosterGetNumFeature,
                lib.LGBM_BoosterGetNumClasses,
                lib.LGBM_BoosterPredictForMat,
                lib.LGBM_BoosterPredictForMatSingleRowFastInit,
                lib.LGBM_BoosterPredictForMatSingleRowFast,
                lib.LGBM_FastConfigFree,
            ):
                fn.restype = ctypes.c_int
            _lib = lib
        return _lib


def _check(lib: ctypes.CDLL, rc: int) -> None:
    if rc != 0:
        raise ArtifactIntegrityError(f"LightGBM: {lib.LGBM_GetLastError().decode(errors='replace')}")


class NativeBooster:
    """A LightGBM binary model loaded from its text form, scored through lib_lightgbm."""

    def __init__(self, model_text: str, num_threads: int = 1) -> None:
        lib = self._lib = _load()
        self._handle = ctypes.c_void_p()
        iterations = ctypes.c_int(0)
        _check(
            lib,
            lib.LGBM_BoosterLoadModelFromString(
                model_text.encode(), ctypes.byref(iterations), ctypes.byref(self._handle)
            ),
        )
        self.num_iterations = iterations.value
        n, k = ctypes.c_int(0), ctypes.c_int(0)
        _check(lib, lib.LGBM_BoosterGetNumFeature(self._handle, ctypes.byref(n)))
        _check(lib, lib.LGBM_BoosterGetNumClasses(self._handle, ctypes.byref(k)))
        if k.value != 1:
            raise ArtifactIntegrityError(f"expected a binary model (one output), this one has {k.value} classes")
        self._n = n.value
        # One OpenMP thread: a single row is far too small to share, and Lambda gives ~1 vCPU at 1 GB.
        self._params = f"num_threads={int(num_threads)}".encode()
        # One-row fast path: configuration parsed once; input and output buffers reused under a lock
        # (the C call releases the GIL, and FastAPI may run sync endpoints on several threads).
        self._row = np.zeros(self._n, dtype=np.float64)
        self._score = np.zeros(1, dtype=np.float64)
        self._contrib = np.zeros(self._n + 1, dtype=np.float64)
        self._out_len = ctypes.c_int64(0)
        self._row_ptr = ctypes.c_void_p(self._row.ctypes.data)
        self._score_ptr = self._score.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
        self._contrib_ptr = self._contrib.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
        self._fast_normal = self._fast_config(_PREDICT_NORMAL)
        self._fast_contrib = self._fast_config(_PREDICT_CONTRIB)
        self._fast = lib.LGBM_BoosterPredictForMatSingleRowFast
        self._out_len_ref = ctypes.byref(self._out_len)
        self.lock = threading.Lock()

    def _fast_config(self, predict_type: int) -> ctypes.c_void_p:
        handle = ctypes.c_void_p()
        _check(
            self._lib,
            self._lib.LGBM_BoosterPredictForMatSingleRowFastInit(
                self._handle,
                predict_type,
                0,
                _ALL_ITERATIONS,
                _DTYPE_FLOAT64,
                self._n,
                self._params,
                ctypes.byref(handle),
            ),
        )
        return handle

    def num_feature(self) -> int:
        return self._n

    # ----- matrices (batch scoring, tests) --------------------------------------------
    def predict(self, X: np.ndarray, raw_score: bool = False, pred_contrib: bool = False) -> np.ndarray:
        """Like ``lightgbm.Booster.predict`` on a 2-D float array: probabilities, margins or contributions."""
        X = np.ascontiguousarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self._n:
            raise ValueError(f"expected a 2-D array with {self._n} columns, got shape {X.shape}")
        kind = _PREDICT_CONTRIB if pred_contrib else _PREDICT_RAW_SCORE if raw_score else _PREDICT_NORMAL
        width = self._n + 1 if pred_contrib else 1
        out = np.empty(X.shape[0] * width, dtype=np.float64)
        if X.shape[0] == 0:
            return out.reshape(0, width) if pred_contrib else out
        out_len = ctypes.c_int64(0)
        _check(
            self._lib,
            self._lib.LGBM_BoosterPredictForMat(
                self._handle,
                ctypes.c_void_p(X.ctypes.data),
                _DTYPE_FLOAT64,
                X.shape[0],
                self._n,
                1,
                kind,
                0,
                # This booster's thread count: with no parameter LightGBM uses whatever OpenMP count the
                # process last set (the one-row path sets 1), which made batch predict single-threaded.
                _ALL_ITERATIONS,
                self._params,
                ctypes.byref(out_len),
                out.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
            ),
        )
        return out.reshape(X.shape[0], width) if pred_contrib else out

    def predict_leaves(self, X: np.ndarray, start_iteration: int = 0, num_iteration: int = -1) -> np.ndarray:
        """The leaf each row reaches in each tree: an (n, trees) int array, like ``pred_leaf=True``.

        ``start_iteration``/``num_iteration`` pick a run of trees (-1: to the last one).
        """
        X = np.ascontiguousarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self._n:
            raise ValueError(f"expected a 2-D array with {self._n} columns, got shape {X.shape}")
        n_trees = (self.num_iterations - start_iteration) if num_iteration < 0 else num_iteration
        out = np.empty(X.shape[0] * n_trees, dtype=np.float64)
        if X.shape[0]:
            out_len = ctypes.c_int64(0)
            _check(
                self._lib,
                self._lib.LGBM_BoosterPredictForMat(
                    self._handle,
                    ctypes.c_void_p(X.ctypes.data),
                    _DTYPE_FLOAT64,
                    X.shape[0],
                    self._n,
                    1,
                    _PREDICT_LEAF_INDEX,
                    start_iteration,
                    num_iteration,
                    self._params,
                    ctypes.byref(out_len),
                    out.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
                ),
            )
        return out.reshape(X.shape[0], n_trees).astype(np.int64)

    def leaf_values(self, tree: int, num_leaves: int) -> np.ndarray:
        """The output values of one tree's leaves, as LightGBM holds them (not re-parsed from text)."""
        out, value = np.empty(num_leaves, dtype=np.float64), ctypes.c_double()
        for leaf in range(num_leaves):
            _check(self._lib, self._lib.LGBM_BoosterGetLeafValue(self._handle, tree, leaf, ctypes.byref(value)))
            out[leaf] = value.value
        return out

    # ----- one row (online API) -------------------------------------------------------
    @property
    def row(self) -> np.ndarray:
        """The input buffer of the one-row path: write features here while holding ``lock``."""
        return self._row

    @property
    def score(self) -> np.ndarray:
        """The output buffer of ``score_row`` (one element); read while holding ``lock``."""
        return self._score

    def score_row(self) -> float:
        """Probability for the row in ``row``; call while holding ``lock``."""
        rc = self._fast(self._fast_normal, self._row_ptr, self._out_len_ref, self._score_ptr)
        if rc != 0:
            _check(self._lib, rc)
        return float(self._score[0])

    def contrib_row(self) -> list[float]:
        """TreeSHAP contributions (bias last) for the row in ``row``; call while holding ``lock``."""
        rc = self._fast(self._fast_contrib, self._row_ptr, self._out_len_ref, self._contrib_ptr)
        if rc != 0:
            _check(self._lib, rc)
        return self._contrib.tolist()

    def __del__(self) -> None:
        lib = getattr(self, "_lib", None)
        if lib is None:
            return
        for name in ("_fast_normal", "_fast_contrib"):
            h = getattr(self, name, None)
            if h is not None and h.value:
                lib.LGBM_FastConfigFree(h)
        h = getattr(self, "_handle", None)
        if h is not None and h.value:
            lib.LGBM_BoosterFree(h)


class BatchBooster(NativeBooster):
    """A NativeBooster for whole chunks: all cores by default."""

    def __init__(self, model_text: str, num_threads: int = 0) -> None:
        # 0 = the cores this process may run on (Lambda at 2048 MB gets ~1.15 vCPU, exposed as 2 cores),
        # said explicitly: LightGBM's "default" is whatever OpenMP count the process last set.
        super().__init__(model_text, num_threads=num_threads if num_threads > 0 else available_cores())
        self.model_text = model_text


def available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)
