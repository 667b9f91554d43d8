"""Converts a saved Keras model to int8 TFLite; meant to run in its own process.

    python -m dynhp_tf.converters._convert_worker MODEL CALIBRATION.npy OUT.tflite per-tensor|per-channel int8|float int8|float

The TFLite converter is native code that can crash the process (a segmentation fault
after "scale out of expressed type range", for one), so `quantize_int8_in_child` runs it
here and turns a crash into an error with the converter's last error line.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(model_path: str, calibration_path: str, out_path: str, dense: str, io: str, head: str) -> None:
    import numpy as np

    from dynhp_tf.converters.quantize import quantize_int8
    from dynhp_tf._keras import keras

    model = keras.models.load_model(model_path, compile=False)
    tflite_model = quantize_int8(
        model, np.load(calibration_path), per_channel_dense=dense == "per-channel", io=io, head=head
    )
    with open(out_path, "wb") as f:
        f.write(tflite_model)


if __name__ == "__main__":
    main(*sys.argv[1:7])
