"""Tiny models and data files for the exporter tests (4x4 inputs, 16-8-3 MLP)."""
import pathlib

import numpy as np

from dynhp_tf._keras import keras

L = keras.layers
INPUT_SHAPE = (4, 4)
DEAD_UNITS = 6  # units of `d1` whose incoming weights and bias are zero (removable)
# The tiny model is untrained: several % of uniform random inputs lie within int8 noise of
# its decision boundaries, so exports of it are run with this --min-agreement (percent).
TINY_MIN_AGREEMENT = 80


def tiny_mlp(seed=0, dead=DEAD_UNITS):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input(INPUT_SHAPE), L.Flatten(name="flat"),
        L.Dense(16, activation="relu", name="d1"),
        L.Dense(8, activation="relu", name="d2"),
        L.Dense(3, activation="softmax", name="out"),
    ])
    kernel, bias = model.get_layer("d1").get_weights()
    kernel[:, :dead] = 0.0
    bias[:dead] = 0.0
    model.get_layer("d1").set_weights([kernel, bias])
    return model


def samples(n=64, seed=0, shape=INPUT_SHAPE):
    return np.random.default_rng(seed).random((n, *shape), dtype=np.float32)


def save_tiny(directory, name="tiny.h5", calibration="cal.npy", eval_data=None):
    """Saves the tiny MLP (and calibration/eval files); returns the model path."""
    directory = pathlib.Path(directory)
    path = directory / name
    tiny_mlp().save(path)
    if calibration:
        np.save(directory / calibration, samples())
    if eval_data:
        x = samples(48, seed=1)
        np.savez(directory / eval_data, x=x, y=np.arange(len(x)) % 3)
    return path


def save_too_large(directory, name="big.h5"):
    """About 1.03 M parameters: an int8 flatbuffer larger than nano33ble's free flash."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((1024,)), L.Dense(1000, activation="relu"), L.Dense(3)])
    path = pathlib.Path(directory) / name
    model.save(path)
    np.save(pathlib.Path(directory) / "big_cal.npy", samples(32, shape=(1024,)))
    return path
