"""int8 vs float top-1 agreement of the demo model, and what each calibration change buys.

Trains the demo's model (LeNet-300-100 on Fashion-MNIST, DynHP 10x, width_multiple 4, as
`examples/fashion_mnist.py`), then quantizes its compact network with `converters.quantize`
under each setting and counts, on the 10,000 test images, how often the int8 model (TFLite's
builtin kernels, which TFLM matches to within one rounding step) picks the float model's class.

    nice -n 10 python -m benchmarks.int8_fidelity --epochs 8

Budget: one training run (about a minute on 2 idle cores at 8 epochs) plus four conversions.
"""
import argparse
import json

import numpy as np

from dynhp_tf.converters.quantize import MAX_CALIBRATION_SAMPLES, quantize_int8, tflite_interpreter
from dynhp_tf.converters.rebuild import compact_model
from dynhp_tf import DynHPCallback
from dynhp_tf._keras import keras
from dynhp_tf.calibration import balanced_indices
from dynhp_tf.datasets import fashion_mnist


def int8_classes(flatbuffer: bytes, x: np.ndarray) -> np.ndarray:
    interpreter = tflite_interpreter(flatbuffer)
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    scale, zero = inp["quantization"]
    result = []
    for sample in x:
        q = np.clip(np.round(sample / scale) + zero, -128, 127).astype(np.int8)
        interpreter.set_tensor(inp["index"], q[None])
        interpreter.invoke()
        result.append(int(np.argmax(interpreter.get_tensor(out["index"])[0])))
    return np.array(result)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--out", default="benchmarks/results/int8_fidelity.json")
    args = parser.parse_args(argv)
    (x_train, y_train), (x_test, y_test) = fashion_mnist()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((28, 28)), keras.layers.Flatten(),
        keras.layers.Dense(300, activation="relu"), keras.layers.Dense(100, activation="relu"),
        keras.layers.Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    cb = DynHPCallback(target_compression=10, width_multiple=4, batch_size=32, verbose=0)
    model.fit(cb.batches(x_train, y_train), epochs=args.epochs, verbose=2)
    compact = compact_model(model).model
    float_classes = np.asarray(compact.predict(x_test, batch_size=512, verbose=0)).argmax(axis=1)
    n = MAX_CALIBRATION_SAMPLES
    random_pick = np.random.default_rng(0).permutation(len(x_train))[:n]
    balanced_pick = balanced_indices(y_train, n, seed=0)
    settings = {
        "random calibration, per-tensor (before)": (random_pick, False),
        "class-balanced calibration, per-tensor (boards)": (balanced_pick, False),
        "random calibration, per-channel": (random_pick, True),
        "class-balanced calibration, per-channel (C runtime)": (balanced_pick, True),
    }
    results = {"epochs": args.epochs, "float_accuracy": float(np.mean(float_classes == y_test)), "settings": {}}
    for name, (pick, per_channel) in settings.items():
        classes = int8_classes(quantize_int8(compact, x_train[pick], per_channel_dense=per_channel), x_test)
        results["settings"][name] = {"agreement": float(np.mean(classes == float_classes)),
                                     "int8_accuracy": float(np.mean(classes == y_test))}
        print(f"{name:55s} agreement {100 * results['settings'][name]['agreement']:.2f}%  "
              f"int8 accuracy {100 * results['settings'][name]['int8_accuracy']:.2f}%", flush=True)
    print(f"float accuracy {100 * results['float_accuracy']:.2f}%")
    with open(args.out, "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
