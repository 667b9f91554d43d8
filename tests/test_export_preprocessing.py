"""A model that scales its own inputs (keras.layers.Normalization adapted, or Rescaling(1/255),
as the Keras guides write it) trains and prunes with DynHPCallback and exports through the CLI:
the int8 model agrees with the float model on held-out samples given as raw inputs, and the
report says whether the preprocessing stayed in the int8 model or was folded away."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from dynhp_tf import DynHPCallback
from dynhp_tf._keras import keras
from dynhp_tf.calibration import sidecar_path
from dynhp_tf.converters.cli import main

L = keras.layers
FEATURES = 8


def raw_inputs(kind, n, seed):
    """Two well-separated classes in raw units: around 50 +- 10 (Normalization) or 0-255."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    centre = np.where(y[:, None] == 1, 0.75, 0.25)
    unit = np.clip(centre + rng.normal(0.0, 0.07, (n, FEATURES)), 0.0, 1.0)
    x = unit * 255.0 if kind == "rescaling" else 40.0 + 20.0 * unit
    return x.astype(np.float32), y


def trained_model(kind, directory):
    """Trains briefly with pruning to 3x; saves model.h5 and the callback's calibration sidecar."""
    x, y = raw_inputs(kind, 512, seed=0)
    keras.utils.set_random_seed(0)
    if kind == "normalization":
        first = L.Normalization(name="pre")
        first.adapt(x)
    else:
        first = L.Rescaling(1 / 255.0, name="pre")
    model = keras.Sequential([keras.Input((FEATURES,)), first,
                              L.Dense(32, activation="relu", name="d1"),
                              L.Dense(16, activation="relu", name="d2"),
                              L.Dense(2, activation="softmax", name="out")])
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    cb = DynHPCallback(target_compression=3, end_epoch=2, verbose=0, calibration_samples=256,
                       calibration_file=str(sidecar_path(directory / "model.h5")))
    history = model.fit(cb.batches(x, y, batch_size=32), epochs=4, callbacks=[cb], verbose=0)
    assert history.history["accuracy"][-1] > 0.95
    model.save(directory / "model.h5")
    return model


@pytest.mark.slow
@pytest.mark.parametrize("kind, kept", [("normalization", True), ("rescaling", False)])
def test_model_with_input_preprocessing_prunes_and_exports(tmp_path, monkeypatch, kind, kept):
    monkeypatch.chdir(tmp_path)
    model = trained_model(kind, tmp_path)
    with np.load(sidecar_path(tmp_path / "model.h5")) as sidecar:  # found by the exporter
        assert float(sidecar["input_max"]) > 1.0  # raw units: the range check must accept them
    x_eval, y_eval = raw_inputs(kind, 64, seed=1)
    np.savez(tmp_path / "eval.npz", x=x_eval, y=y_eval)

    result = CliRunner().invoke(main, ["model.h5", "--board", "esp32", "--eval-data", "eval.npz",
                                       "--out", "out"])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["model"]["compression"] > 2.5  # it really pruned
    assert report["tflm"]["sample_source"] == "eval" and report["tflm"]["top1_agreement"] >= 0.97
    fate = report["tflite"]["preprocessing"]
    assert fate["layers"] == ["pre"] and fate["kept"] is kept
    # What the report says is what the flatbuffer holds: SUB and MUL on the input, or none.
    assert (set(fate["ops"]) >= {"SUB", "MUL"}) if kept else fate["ops"] == []
    assert fate["statement"] in result.output
    assert fate["statement"] in (tmp_path / "out" / "report.md").read_text()
    # The compact model still preprocesses: it equals the trained model on raw inputs.
    compact = keras.models.load_model(tmp_path / "out" / "model_compact.h5", compile=False)
    np.testing.assert_allclose(compact.predict(x_eval, verbose=0), model.predict(x_eval, verbose=0),
                               atol=1e-5)
