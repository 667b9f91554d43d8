"""DynHP-trained CNN and residual models exported end to end: rebuild, int8, TFLM, firmware."""
import numpy as np
import pytest

from dynhp_tf.converters.export import export_model
from dynhp_tf import DynHPCallback
from dynhp_tf._keras import keras
from tests.models import cnn, compiled, data_for, residual

EXPECTED_OPS = {
    "cnn": {"CONV_2D", "MAX_POOL_2D", "FULLY_CONNECTED"},
    "residual": {"CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "FULLY_CONNECTED"},
}


@pytest.mark.parametrize("name, build", [("cnn", cnn), ("residual", residual)])
def test_pruned_convolutional_model_exports_and_runs_under_tflm(tmp_path, name, build):
    keras.backend.clear_session()
    model = compiled(build())
    x, y = data_for(model, n=192)
    cb = DynHPCallback(target_compression=2.5, end_epoch=0, verbose=0)
    model.fit(cb.batches(x, y), epochs=2, callbacks=[cb], verbose=0)
    model.save(tmp_path / "model.keras")
    np.save(tmp_path / "cal.npy", x[:64])
    np.savez(tmp_path / "eval.npz", x=x[64:], y=y[64:])

    result = export_model(tmp_path / "model.keras", "esp32s3", out_dir=tmp_path / "out",
                          calibration=tmp_path / "cal.npy", eval_data=tmp_path / "eval.npz",
                          min_agreement=0.85)  # briefly trained on noise

    report = result.report
    widths = {layer["name"]: layer["compact_width"] for layer in report["model"]["layers"]}
    for group, (_, kept) in cb.widths().items():
        assert widths[group] == kept
    assert report["model"]["params_compact"] == cb.history[-1]["dynhp/params"]
    assert EXPECTED_OPS[name] <= set(report["tflm"]["ops"])
    assert report["tflm"]["arena_bytes"] > 0 and report["fit"]["fits"] is True
    assert report["tflm"]["top1_agreement"] >= 0.85
    resolver = (tmp_path / "out" / "firmware" / "include" / "model_ops.h").read_text()
    assert "AddConv2D" in resolver and ("AddDepthwiseConv2D" in resolver) == (name == "residual")
