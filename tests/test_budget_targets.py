"""DynHPCallback with device budgets (a board, explicit limits) and the exporter's hint."""
import numpy as np
import pytest

from dynhp_tf.converters.errors import ExportError
from dynhp_tf.converters.export import export_model
from dynhp_tf.converters.quantize import quantize_int8
from dynhp_tf.converters.rebuild import compact_model
from dynhp_tf.converters.tflm_check import run_tflm
from dynhp_tf import DynHPCallback
from dynhp_tf._keras import keras
from dynhp_tf.calibration import save_calibration, sidecar_path
from tests.models import L, compiled, data_for, mlp


def fit(model, cb, epochs=3, n=256):
    x, y = data_for(model, n=n)
    return model.fit(cb.batches(x, y, batch_size=32), epochs=epochs, callbacks=[cb], verbose=0), x


def measure(model, x):
    flatbuffer = quantize_int8(model, x[:64], per_channel_dense=False)
    _, arena = run_tflm(flatbuffer, np.zeros((1, *x.shape[1:]), np.int8))
    return len(flatbuffer), arena["arena_min"]


def test_explicit_limits_hold_in_the_exported_model():
    model = compiled(mlp(inputs=64, hidden=(128, 64)))  # about 17 KB of int8 flatbuffer
    cb = DynHPCallback(flatbuffer_bytes=8000, macs=5000, end_epoch=1, verbose=0)
    history, x = fit(model, cb)
    logs = history.history
    assert logs["dynhp/flatbuffer_bytes"][0] > logs["dynhp/flatbuffer_bytes"][-1]  # it ramps
    assert logs["dynhp/flatbuffer_bytes"][-1] <= 8000 and logs["dynhp/macs"][-1] <= 5000
    flatbuffer_bytes, arena_bytes = measure(compact_model(model).model, x)
    assert flatbuffer_bytes <= 8000
    assert logs["dynhp/arena_bytes"][-1] == pytest.approx(arena_bytes, rel=0.10)
    # No stronger than needed: the limit is what stopped pruning, not the floor.
    assert logs["dynhp/compression"][-1] < 10


def test_limits_for_a_float_head_hold_in_its_export():
    model = compiled(keras.Sequential([keras.Input((64,)), L.Dense(128, activation="relu"),
                                       L.Dense(64, activation="relu"), L.Dense(3, activation="softmax")]),
                     loss="sparse_categorical_crossentropy")
    cb = DynHPCallback(flatbuffer_bytes=8000, end_epoch=1, head="float", verbose=0)
    _, x = fit(model, cb)
    compact = compact_model(model).model
    float_head = quantize_int8(compact, x[:64], per_channel_dense=False, head="float")
    assert len(float_head) <= 8000
    assert len(quantize_int8(compact, x[:64], per_channel_dense=False)) < len(float_head)


def test_a_float_head_needs_a_softmax_dense_at_the_end():
    with pytest.raises(ValueError, match="head: expected one of"):
        DynHPCallback(target_compression=2, head="int16")
    cb = DynHPCallback(flatbuffer_bytes=8000, head="float", verbose=0)
    with pytest.raises(ValueError, match="head='float': a float head needs a model that ends in a Dense layer "
                                         "with softmax"):
        fit(compiled(mlp()), cb, epochs=1)


def test_a_limit_no_network_can_meet_is_refused_at_train_begin():
    model = compiled(mlp())
    cb = DynHPCallback(arena_bytes=300, min_neurons=4, verbose=0)
    with pytest.raises(ValueError, match=r"arena_bytes: the limit arena_bytes 300 is unreachable: with "
                                         r"min_neurons=4 .* smallest network has an estimated [\d,]+ flatbuffer "
                                         r"bytes, [\d,]+ arena bytes"):
        fit(model, cb, epochs=1)


def test_bad_budget_arguments_are_refused_by_name():
    with pytest.raises(ValueError, match="target_board: unknown board 'uno'; known boards: esp32"):
        DynHPCallback(target_board="uno")
    with pytest.raises(ValueError, match="flatbuffer_bytes: expected a number >= 1"):
        DynHPCallback(flatbuffer_bytes=0)
    with pytest.raises(ValueError, match="target_compression: expected a number > 1 .* or a device budget"):
        DynHPCallback()


def test_config_round_trips_the_budget():
    cb = DynHPCallback(target_board="nano33ble", arena_bytes=50_000)
    again = DynHPCallback.from_config(cb.get_config())
    assert again.limits == cb.limits and again.limits["arena_bytes"] == 50_000
    assert DynHPCallback.from_config(DynHPCallback(target_board="esp32", head="float").get_config()).head == "float"


@pytest.mark.slow
def test_target_board_trains_a_network_the_exporter_accepts_first_try(tmp_path):
    """784-1200-10 (0.95 M int8 weights) does not fit nano33ble's 833,040 free bytes of flash."""
    keras.utils.set_random_seed(0)
    dense = keras.Sequential([keras.Input((784,)), L.Dense(1200, activation="relu"), L.Dense(10)])
    x = np.random.default_rng(0).random((512, 784), dtype=np.float32)
    y = (x[:, :10].argmax(axis=1)).astype("int64")
    dense_path = tmp_path / "dense.h5"
    dense.save(dense_path)
    save_calibration(sidecar_path(dense_path), x[:256], training_inputs=x)
    with pytest.raises(ExportError, match=r"does not fit nano33ble: flash .*target_board='nano33ble'"):
        export_model(dense_path, "nano33ble", out_dir=tmp_path / "dense-out", min_agreement=0.5)

    model = compiled(dense)
    cb = DynHPCallback(target_board="nano33ble", width_multiple=4, end_epoch=0, verbose=0,
                       calibration_file=str(tmp_path / "pruned.calibration.npz"))
    model.fit(cb.batches(x, y, batch_size=64), epochs=2, callbacks=[cb], verbose=0)
    model.save(tmp_path / "pruned.h5")
    result = export_model(tmp_path / "pruned.h5", "nano33ble", out_dir=tmp_path / "out", min_agreement=0.5)
    fit_report = result.report["fit"]
    assert fit_report["fits"] and fit_report["board"] == "nano33ble"
    assert (tmp_path / "out" / "report.md").read_text().count("| flash |") == 1
    estimate = result.report["estimate"]
    assert estimate["flatbuffer_bytes"]["estimated"] == pytest.approx(estimate["flatbuffer_bytes"]["measured"],
                                                                      rel=0.05)
