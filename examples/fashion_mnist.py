"""Train LeNet-300-100 on Fashion-MNIST with DynHP, ready for `dynhp-export`.

Writes into --out: `lenet_dynhp.h5` (the pruned model; pruned neurons are exact zeros),
`lenet_dynhp.calibration.npz` (samples for int8 calibration, found by dynhp-export next to
the model) and `eval.npz` (the test set, for `dynhp-export --eval-data`).

    python examples/fashion_mnist.py --epochs 8 --target 10 --out runs/demo
"""
import argparse
import pathlib

import numpy as np

from dynhp_tf import DynHPCallback
from dynhp_tf._keras import keras
from dynhp_tf.calibration import sidecar_path
from dynhp_tf.datasets import fashion_mnist


def main():
    parser = argparse.ArgumentParser(description="Train LeNet-300-100 with DynHP on Fashion-MNIST.")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--target", type=float, default=10.0, help="compression factor (dense/remaining params)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--width-multiple", type=int, default=4)
    parser.add_argument("--int8-finetune-epochs", type=int, default=3,
                        help="narrow_logit_range epochs at the end, for int8/float agreement (0: off)")
    parser.add_argument("--head", choices=("int8", "float"), default="int8",
                        help="the classifier head dynhp-export --head will give it (shapes the int8 fine-tuning)")
    parser.add_argument("--seed", type=int, default=0, help="of the weights' initialization and the callback")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("runs/demo"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    model_path = args.out / "lenet_dynhp.h5"

    (x_train, y_train), (x_test, y_test) = fashion_mnist()
    keras.utils.set_random_seed(args.seed)
    model = keras.Sequential([
        keras.Input((28, 28)), keras.layers.Flatten(),
        keras.layers.Dense(300, activation="relu"), keras.layers.Dense(100, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    cb = DynHPCallback(target_compression=args.target, width_multiple=args.width_multiple,
                       batch_size=args.batch_size, calibration_file=str(sidecar_path(model_path)),
                       int8_finetune_epochs=args.int8_finetune_epochs, head=args.head, seed=args.seed)
    model.fit(cb.batches(x_train, y_train), epochs=args.epochs, validation_data=(x_test, y_test),
              callbacks=[cb], verbose=2)
    model.save(model_path)
    np.savez_compressed(args.out / "eval.npz", x=x_test, y=y_test)
    print(f"saved {model_path} (+ {sidecar_path(model_path).name}, eval.npz)")


if __name__ == "__main__":
    main()
