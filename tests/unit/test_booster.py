"""lib_lightgbm through ctypes must give exactly what lightgbm.Booster gives, and the one-row
path of the Predictor exactly what its matrix path gives."""

import subprocess
import sys

import lightgbm as lgb
import numpy as np
import pytest

from churnguard.domain.booster import NativeBooster
from churnguard.domain.errors import ArtifactIntegrityError, RecordValidationError
from tests.conftest import synth_frame, telco_row


@pytest.fixture(scope="module")
def matrix(predictor):
    X = predictor.encoder.encode_frame(synth_frame(300, seed=11))
    X[::7, predictor.encoder.names.index("TotalCharges")] = np.nan  # nullable column: missing values too
    return X


@pytest.fixture(scope="module")
def reference(trained):
    return lgb.Booster(model_str=trained[0].model_text)


@pytest.mark.parametrize("kind", [{}, {"raw_score": True}, {"pred_contrib": True}])
def test_matrix_predictions_are_identical_to_lightgbm(predictor, reference, matrix, kind):
    ours = predictor.booster.predict(matrix, **kind)
    theirs = reference.predict(matrix, **kind)
    assert ours.shape == theirs.shape
    np.testing.assert_array_equal(ours, theirs)


def test_single_row_fast_path_is_identical_to_lightgbm(predictor, reference, matrix):
    b = predictor.booster
    for x in matrix[:60]:
        with b.lock:
            b.row[:] = x
            score, contrib = b.score_row(), b.contrib_row()
        assert score == reference.predict(x[None, :])[0]
        assert contrib == reference.predict(x[None, :], pred_contrib=True)[0].tolist()


def test_one_record_matches_the_matrix_path(predictor, matrix):
    rows = synth_frame(80, seed=5).to_dict("records")
    for row in rows:
        X = predictor.encoder.encode_record(row)[None, :]
        for reasons in (True, False):
            assert predictor.predict_record(row, reasons=reasons) == predictor.predict_matrix(X, reasons=reasons)[0]
    # several records go through the matrix path; each equals its one-record answer
    assert predictor.predict_records(rows[:10]) == [predictor.predict_record(r) for r in rows[:10]]


def test_a_bad_record_leaves_the_next_prediction_intact(predictor):
    good = telco_row(0)
    before = predictor.predict_record(good)
    with pytest.raises(RecordValidationError):
        predictor.predict_record(dict(good, Contract="Weekly", tenure="soon"))
    assert predictor.predict_record(good) == before


def test_wrong_width_matrix_is_refused(predictor):
    with pytest.raises(ValueError, match="columns"):
        predictor.booster.predict(np.zeros((2, predictor.encoder.n_features + 1)))


def test_an_empty_matrix_gives_empty_predictions(predictor):
    assert predictor.booster.predict(np.zeros((0, predictor.encoder.n_features))).shape == (0,)


@pytest.mark.parametrize("text", ["", "tree\nnot a model", "tree\nversion=v4\nnum_class=3\n"])
def test_garbage_model_text_is_an_integrity_error(text):
    with pytest.raises(ArtifactIntegrityError):
        NativeBooster(text)


def test_scoring_does_not_import_the_lightgbm_package(trained):
    """The predict package ships lib_lightgbm.so without scipy: the Python package must stay unimported."""
    code = (
        "import sys, json; from churnguard.domain.predictor import Predictor;"
        "from churnguard.domain.bundle import ModelBundle;"
        "b = json.load(sys.stdin); p = Predictor(ModelBundle(b['v'], b['t'], b['m']));"
        "p.predict_record(b['r']);"
        "bad = [m for m in ('lightgbm', 'scipy', 'pandas', 'sklearn') if m in sys.modules];"
        "print(','.join(bad))"
    )
    import json

    bundle = trained[0]
    payload = json.dumps({"v": bundle.version, "t": bundle.model_text, "m": bundle.metadata, "r": telco_row(0)})
    out = subprocess.run([sys.executable, "-c", code], input=payload, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
