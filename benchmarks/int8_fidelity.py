"""int8 vs float top-1 agreement of the demo model, and what each quantization change buys.

Trains the demo's model (LeNet-300-100 on Fashion-MNIST, DynHP 10x, width_multiple 4, as
`examples/fashion_mnist.py`), then quantizes its compact network with `converters.quantize`
under each setting and counts, on the 10,000 test images, how often the int8 model (TFLite's
builtin kernels, which TFLM matches to within one rounding step) picks the float model's class.

    nice -n 10 python -m benchmarks.int8_fidelity --epochs 8
    nice -n 10 python -m benchmarks.int8_fidelity --network lenet5 --epochs 4

Budget: one training run (about a minute on 2 idle cores at 8 epochs) plus thirteen conversions
and six three-epoch fine-tunings (not timed as a whole since they grew; three settings with two
fine-tunings took about 2 minutes for LeNet-300-100 and 4 for the CNN on 2 shared cores under
`nice -n 10`); `--only` runs a subset, `--seed` another training.
"argmax logit range" is the exporter's default (`dynhp_tf.converters.logit_range`); "min/max"
is the converter's own range for the logits.
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
from dynhp_tf.int8_finetune import narrow_logit_range


def int8_classes(flatbuffer: bytes, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Top-1 classes of the int8 model, and whether that top score is tied (argmax takes the first)."""
    interpreter = tflite_interpreter(flatbuffer)
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    scale, zero = inp["quantization"]
    result, tied = [], []
    for sample in x:
        q = np.clip(np.round(sample / scale) + zero, -128, 127).astype(np.int8)
        interpreter.set_tensor(inp["index"], q[None])
        interpreter.invoke()
        scores = interpreter.get_tensor(out["index"])[0]
        result.append(int(np.argmax(scores)))
        tied.append(int(np.sum(scores == scores.max())) > 1)
    return np.array(result), np.array(tied)


# The demo's network (LeNet-300-100) and the comparison benchmark's CNN (`benchmarks.runner.lenet5`,
# which imports tfmot and runs on tf_keras only, so its layers are repeated here).
NETWORKS = {
    "lenet300100": lambda: [keras.Input((28, 28)), keras.layers.Flatten(),
                            keras.layers.Dense(300, activation="relu"), keras.layers.Dense(100, activation="relu"),
                            keras.layers.Dense(10, activation="softmax")],
    "lenet5": lambda: [keras.Input((28, 28, 1)), keras.layers.Conv2D(6, 5, padding="same", activation="relu"),
                       keras.layers.MaxPooling2D(), keras.layers.Conv2D(16, 5, activation="relu"),
                       keras.layers.MaxPooling2D(), keras.layers.Flatten(),
                       keras.layers.Dense(120, activation="relu"), keras.layers.Dense(10, activation="softmax")],
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--finetune-epochs", type=int, default=3, help="of each fine-tuning and its control")
    parser.add_argument("--network", choices=sorted(NETWORKS), default="lenet300100")
    parser.add_argument("--min-neurons", type=int, default=1, help="DynHPCallback's floor on every layer's width")
    parser.add_argument("--seed", type=int, default=0, help="of the training and the fine-tunings")
    parser.add_argument("--only", nargs="*", help="run only the settings whose name holds one of these strings")
    parser.add_argument("--out", help="default: benchmarks/results/int8_fidelity[_lenet5].json")
    args = parser.parse_args(argv)
    args.out = args.out or f"benchmarks/results/int8_fidelity{'' if args.network == 'lenet300100' else '_' + args.network}.json"
    (x_train, y_train), (x_test, y_test) = fashion_mnist()
    if args.network == "lenet5":
        x_train, x_test = x_train[..., None], x_test[..., None]
    keras.utils.set_random_seed(args.seed)
    model = keras.Sequential(NETWORKS[args.network]())
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    cb = DynHPCallback(target_compression=10, width_multiple=4, batch_size=32, verbose=0,
                       min_neurons=args.min_neurons)
    model.fit(cb.batches(x_train, y_train), epochs=args.epochs, callbacks=[cb], verbose=2)
    n = MAX_CALIBRATION_SAMPLES
    random_pick = np.random.default_rng(0).permutation(len(x_train))[:n]
    balanced_pick = balanced_indices(y_train, n, seed=0)
    # (calibration, per-channel dense, argmax logit range, fine-tuning or None[, head])
    settings = {
        "random calibration, per-tensor, min/max logits (before)": (random_pick, False, False, None),
        "class-balanced calibration, per-tensor, min/max logits": (balanced_pick, False, False, None),
        "class-balanced calibration, per-channel, min/max logits": (balanced_pick, True, False, None),
        "class-balanced, per-tensor, argmax logit range (boards)": (balanced_pick, False, True, None),
        "class-balanced, per-channel, argmax logit range": (balanced_pick, True, True, None),
        # The fine-tunings are more epochs: the control is those epochs with neither penalty nor grid.
        "+fine-tuning, plain (control), per-tensor, argmax": (balanced_pick, False, True, "control"),
        "+logit penalty, per-tensor, argmax": (balanced_pick, False, True, "penalty"),
        "+logit penalty, per-channel, argmax": (balanced_pick, True, True, "penalty"),
        "+int8 weight grid, per-tensor, argmax": (balanced_pick, False, True, "grid"),
        "+int8 weight and activation grid, per-tensor, argmax": (balanced_pick, False, True, "grid+activations"),
        # The same after `level_top_logit` (`level_logits=True`): the callback's fine-tuning.
        "+levelled top logit, int8 weight and activation grid (int8_finetune_epochs), per-tensor, argmax":
            (balanced_pick, False, True, "levelled"),
        # The same model exported with `dynhp-export --head float` (`converters.float_head`).
        "+levelled top logit, int8 weight and activation grid (int8_finetune_epochs), per-tensor, float head":
            (balanced_pick, False, True, "levelled", "float"),
        # dynhp-export --runtime c: the same model exported per-channel for our C kernels, as
        # trained for a board (per-tensor grid) or with the grid the C runtime's export uses.
        "+levelled top logit, int8 weight and activation grid (int8_finetune_epochs), per-channel (C runtime), argmax":
            (balanced_pick, True, True, "levelled"),
        "+levelled top logit, int8 per-channel weight and activation grid, per-channel (C runtime), argmax":
            (balanced_pick, True, True, "per-channel levelled"),
    }
    settings = {k: v for k, v in settings.items() if not args.only or any(o in k for o in args.only)}
    finetunings = {"control": dict(weight=0.0), "penalty": dict(weight=1.0),
                   "grid": dict(weight=0.0, weight_grid="per-tensor", activation_grid=False),
                   "grid+activations": dict(weight=0.0, weight_grid="per-tensor", activation_grid=True),
                   "levelled": dict(weight=0.0, weight_grid="per-tensor", activation_grid=True, level_logits=True),
                   "per-channel levelled": dict(weight=0.0, weight_grid="per-channel", activation_grid=True,
                                                level_logits=True)}
    results = {"network": args.network, "seed": args.seed, "min_neurons": args.min_neurons, "epochs": args.epochs,
               "finetune_epochs": args.finetune_epochs, "settings": {}}
    tuned = {}  # fine-tuning -> (compact model, its float classes)

    def float_model(finetuning):
        if finetuning not in tuned:
            source = model
            if finetuning is not None:
                source = keras.models.clone_model(model)
                source.set_weights(model.get_weights())
                results[f"finetuning_{finetuning}"] = narrow_logit_range(
                    source, x_train, y_train, epochs=args.finetune_epochs, seed=args.seed,
                    **finetunings[finetuning])
            compact = compact_model(source).model
            tuned[finetuning] = compact, np.asarray(compact.predict(x_test, batch_size=512, verbose=0)).argmax(axis=1)
        return tuned[finetuning]

    for name, (pick, per_channel, argmax_logits, finetuning, *head) in settings.items():
        compact, float_classes = float_model(finetuning)
        flatbuffer = quantize_int8(compact, x_train[pick], per_channel_dense=per_channel, argmax_logits=argmax_logits,
                                   head=(head or ["int8"])[0])
        classes, tied = int8_classes(flatbuffer, x_test)
        differ = classes != float_classes
        row = results["settings"][name] = {
            "agreement": float(np.mean(~differ)), "int8_accuracy": float(np.mean(classes == y_test)),
            "float_accuracy": float(np.mean(float_classes == y_test)),
            "params": int(compact.count_params()),
            "widths": [int(layer.kernel.shape[-1]) for layer in compact.layers if hasattr(layer, "kernel")],
            # A tie in the int8 scores means the float top-2 were within one int8 step.
            "disagreements_at_a_tie": float(np.mean(tied[differ])) if differ.any() else 0.0}
        print(f"{name:60s} agreement {100 * row['agreement']:.2f}%  int8 accuracy "
              f"{100 * row['int8_accuracy']:.2f}%  float accuracy {100 * row['float_accuracy']:.2f}%  "
              f"disagreements at a tie {100 * row['disagreements_at_a_tie']:.0f}%", flush=True)
    print("logit ranges:", {k: v for k, v in results.items() if k.startswith("finetuning")})
    with open(args.out, "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
