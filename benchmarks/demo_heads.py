"""The demo end to end with an int8 and a float classifier head: agreement, accuracy, bytes.

For each seed: `examples/fashion_mnist.py --seed S` (the demo's training: LeNet-300-100, DynHP
10x, 8 epochs, the callback's 3-epoch int8 fine-tuning), then `dynhp-export`'s `export_model`
for nano33ble with `--eval-data` (the 10,000 test images under the real TFLM kernels) once with
`head="int8"` (the default) and once with `head="float"` (`dynhp_tf.converters.float_head`).
Both exports are of the same trained model, so the difference is the head. With `--runtime c`
the exports also generate the C runtime (its own per-channel flatbuffer with the same head,
built and golden-checked under QEMU mps2-an386 when the toolchain is installed) and record its
agreement, accuracy and measured flash and RAM. `--trained-for-head` adds a third export: the float
head of a second training, `examples/fashion_mnist.py --head float`, whose int8 fine-tuning leaves
the last layer and the logits in float. With the same seed the two trainings are identical up to
that fine-tuning, so the two float heads differ by what the fine-tuning does.

    nice -n 10 python -m benchmarks.demo_heads --seeds 0 1 2 3 4 5
    nice -n 10 python -m benchmarks.demo_heads --runtime c --out benchmarks/results/demo_heads_c_runtime.json
    nice -n 10 python -m benchmarks.demo_heads --trained-for-head --out benchmarks/results/demo_heads_trained_for_head.json

Budget: about 2.5 minutes per seed on 2 idle cores (one training, two exports).
"""
import argparse
import json
import pathlib
import subprocess
import sys
import tempfile

import numpy as np

from dynhp_tf.converters.export import export_model

def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--board", default="nano33ble")
    parser.add_argument("--runtime", choices=("tflm", "c"), default="tflm")
    parser.add_argument("--trained-for-head", action="store_true",
                        help="export each head from its own training with examples/fashion_mnist.py --head")
    parser.add_argument("--out", default="benchmarks/results/demo_heads.json")
    args = parser.parse_args(argv)
    results = {"method": __doc__.split("\n\n")[1].replace("\n", " "), "board": args.board,
               "runtime": args.runtime, "trained_for_head": args.trained_for_head, "seeds": {}}
    # (row, the head the training's int8 fine-tuning was for, the exported head)
    exports = [("int8", "int8", "int8"), ("float", "int8", "float")]
    if args.trained_for_head:
        exports.append(("float_trained_for_head", "float", "float"))
    for seed in args.seeds:
        with tempfile.TemporaryDirectory(prefix="dynhp-demo-heads-") as tmp:
            row = results["seeds"][seed] = {}
            for name, trained, head in exports:
                run = pathlib.Path(tmp) / f"trained-{trained}"
                if not run.exists():
                    subprocess.run([sys.executable, "examples/fashion_mnist.py", "--seed", str(seed), "--out",
                                    str(run), "--head", trained], check=True, stdout=subprocess.DEVNULL)
                report = export_model(run / "lenet_dynhp.h5", args.board, out_dir=run / head,
                                      eval_data=run / "eval.npz", head=head, runtime=args.runtime).report
                q = report["tflm"]
                row[name] = {"agreement": 100 * q["top1_agreement"], "float_accuracy": 100 * q["float_accuracy"],
                             "int8_accuracy_tflm": 100 * q["int8_accuracy"], "flatbuffer_bytes": report["tflite"]["bytes"],
                             "arena_bytes": q["arena_bytes"], "params": report["model"]["params_compact"]}
                if args.runtime == "c":
                    c = report["c_runtime"]
                    fb, measured = c["flatbuffer"], c["measured"] or {}
                    row[name]["c_runtime"] = {
                        "agreement": 100 * fb["top1_agreement"], "int8_accuracy": 100 * fb["int8_accuracy"],
                        "dense_quantization": fb["dense_quantization"], "head": fb["head"],
                        "golden": measured.get("golden"), "max_abs_diff": measured.get("max_abs_diff"),
                        "flash_bytes": measured.get("flash_bytes"), "ram_bytes": measured.get("ram_bytes"),
                        "not_measured": c["not_measured"]}
            print(f"seed {seed}: " + "; ".join(
                f"{h} head agreement {r['agreement']:.2f}%, int8 accuracy {r['int8_accuracy_tflm']:.2f}%, "
                f"{r['flatbuffer_bytes']:,} bytes, arena {r['arena_bytes']:,}" for h, r in row.items()), flush=True)
    for head, _, _ in exports:
        for name, pick in (("agreement", lambda r: r["agreement"]),
                           ("c_runtime_agreement", lambda r: r.get("c_runtime", {}).get("agreement"))):
            values = [pick(row[head]) for row in results["seeds"].values()]
            if None in values:
                continue
            results[f"{head}_{name}"] = {"mean": float(np.mean(values)), "min": float(np.min(values)),
                                         "max": float(np.max(values))}
            print(f"{head} head: {name.replace('_', ' ')} mean {np.mean(values):.2f}%, "
                  f"min {np.min(values):.2f}%, max {np.max(values):.2f}%")
    with open(args.out, "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
