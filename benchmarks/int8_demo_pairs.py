"""The callback's int8 fine-tuning with and without a levelled top logit, on one demo model.

Paired: both fine-tunings start from the same trained model (`examples/fashion_mnist.py
--int8-finetune-epochs 0 --seed S --out DIR`), so the difference is the change, not the
training. Each is exported as `dynhp-export` does (compact model, 500 of the sidecar's
class-balanced calibration samples, per-tensor dense layers, argmax logit range) and run on the
10,000 test images under the real TFLM kernels (`tflite-micro` wheel).

    nice -n 10 python -m benchmarks.int8_demo_pairs DIR --seed S

Budget: about 2 minutes per model on 2 shared cores (two 3-epoch fine-tunings, two exports).
"""
import argparse
import json

import numpy as np
from tflite_micro.python.tflite_micro import runtime

from dynhp_tf._keras import keras
from dynhp_tf.converters.export import load_keras_model
from dynhp_tf.converters.logit_range import argmax_range
from dynhp_tf.converters.quantize import quantize_int8, tflite_interpreter
from dynhp_tf.converters.rebuild import compact_model
from dynhp_tf.datasets import fashion_mnist
from dynhp_tf.int8_finetune import narrow_logit_range
from dynhp_tf.logit_level import logits_function


def tflm_scores(flatbuffer: bytes, x: np.ndarray) -> np.ndarray:
    scale, zero = tflite_interpreter(flatbuffer).get_input_details()[0]["quantization"]
    interpreter = runtime.Interpreter.from_bytes(flatbuffer, arena_size=64 * 1024)
    scores = []
    for sample in np.clip(np.round(x / scale) + zero, -128, 127).astype(np.int8):
        interpreter.set_input(sample[None], 0)
        interpreter.invoke()
        scores.append(np.array(interpreter.get_output(0))[0])
    return np.array(scores)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", help="output of examples/fashion_mnist.py --int8-finetune-epochs 0")
    parser.add_argument("--seed", type=int, default=0, help="of the fine-tunings (the callback uses its seed)")
    parser.add_argument("--out", help="default: DIR/int8_demo_pairs.json")
    args = parser.parse_args(argv)
    (x_train, y_train), _ = fashion_mnist()
    trained = compact_model(load_keras_model(f"{args.dir}/lenet_dynhp.h5")).model
    calibration = np.load(f"{args.dir}/lenet_dynhp.calibration.npz")["x"]
    test = np.load(f"{args.dir}/eval.npz")
    x, y = test["x"], test["y"]
    results = {"dir": args.dir, "seed": args.seed, "settings": {}}
    for name, level in (("weight and activation grid", False), ("levelled top logit + weight and activation grid", True)):
        model = keras.models.clone_model(trained)
        model.set_weights(trained.get_weights())
        narrow_logit_range(model, x_train, y_train, epochs=3, seed=args.seed, weight=0.0, weight_grid="per-tensor",
                           activation_grid=True, level_logits=level)
        float_classes = np.asarray(model.predict(x, batch_size=1000, verbose=0)).argmax(axis=1)
        scores = tflm_scores(quantize_int8(model, calibration, per_channel_dense=False), x)
        classes, tied = scores.argmax(axis=1), (scores == scores.max(axis=1, keepdims=True)).sum(axis=1) > 1
        differ = classes != float_classes
        low, high = argmax_range(np.asarray(logits_function(model)(calibration[:500])))
        row = results["settings"][name] = {
            "agreement": float(np.mean(~differ)), "float_accuracy": float(np.mean(float_classes == y)),
            "int8_accuracy": float(np.mean(classes == y)), "disagreements": int(differ.sum()),
            "disagreements_at_a_tie": int(np.sum(differ & tied)), "logit_step": (high - low) / 255}
        print(f"{name:50s} agreement {100 * row['agreement']:.2f}%  float {100 * row['float_accuracy']:.2f}%  "
              f"int8 {100 * row['int8_accuracy']:.2f}%  logit step {row['logit_step']:.4f}", flush=True)
    with open(args.out or f"{args.dir}/int8_demo_pairs.json", "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
