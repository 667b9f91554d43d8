"""The benchmark report: generated from a results JSON, with every contender at every compression."""
import json

import pytest

pytest.importorskip("matplotlib")

from benchmarks.report import CONTENDERS, LABELS, write_report  # noqa: E402

NETWORKS = {"lenet300100": "LeNet-300-100 (784-300-100-10)", "lenet5": "LeNet-5-style CNN"}
COMPRESSIONS = [2, 5, 10, 20]
SEEDS = 2
DENSE_MEMORY = {"weights": 4000, "gradients": 4000, "optimizer_slots": 8000, "activations": 500, "inputs": 300,
                "total": 16800}


def _run(network, contender, compression, seed):
    c = compression or 1
    run = {"network": network, "contender": contender, "compression": compression, "seed": seed,
           "float_accuracy": 0.9 - 0.01 * c + 0.001 * seed, "int8_tflite_accuracy": 0.89 - 0.01 * c,
           "int8_tflm_accuracy": 0.89 - 0.01 * c + 0.002 * seed, "params": 1000 // c, "nonzero_params": 1000 // c,
           "macs": 900 // c, "flatbuffer_bytes": 1200 // c, "arena_bytes": 300, "train_seconds": 1.0 + seed,
           "memory_peak_bytes": 16800, "memory_mean_bytes": 16800 // c, "memory_final_bytes": 16800 // c,
           "batch_size_final": 32, "wall_seconds": 2.0}
    if contender.startswith("dynhp"):
        run["trajectory"] = [{"epoch": e, "params": 1000 // (e + 1), "batch_size": 32 * (e + 1),
                              "memory_bytes": 16800 - 100 * e, "test_accuracy": 0.8 + 0.01 * e} for e in range(3)]
    return run


@pytest.fixture
def results_file(tmp_path):
    runs = []
    for seed in range(SEEDS):
        for network in NETWORKS:
            runs.append(_run(network, "dense", None, seed))
            runs += [_run(network, name, c, seed) for c in COMPRESSIONS for name in CONTENDERS[1:]]
    meta = {"config": {"mode": "synthetic", "epochs": 3, "train_samples": 100, "test_samples": 50, "seeds": SEEDS,
                       "compressions": COMPRESSIONS, "networks": list(NETWORKS)},
            "batch_size": 32, "optimizer": "Adam", "framework": "test", "host": "test", "status": "complete",
            "planned_runs": len(runs), "completed_runs": len(runs), "elapsed_seconds": 60.0,
            "networks": {n: {"title": t, "params": 1000, "dense_memory": DENSE_MEMORY} for n, t in NETWORKS.items()}}
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"meta": meta, "runs": runs}))
    return path


def _section(text, title):
    """The markdown between the `## title` heading and the next `## ` heading."""
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else None]


def test_report_tables_hold_every_contender_at_every_compression(results_file, tmp_path):
    markdown = tmp_path / "docs" / "benchmarks.md"
    text = write_report(results_file, markdown, tmp_path / "docs" / "benchmarks")

    assert markdown.read_text() == text
    for network, title in NETWORKS.items():
        section = _section(text, title)
        rows = [line for line in section.splitlines() if line.startswith("| ")]
        for table in ("### Accuracy and device cost", "### Training cost"):
            assert table in section
        # Both per-network tables: dense once, then every contender at every compression.
        assert sum(line.startswith(f"| 1x | {LABELS['dense']} |") for line in rows) == 2
        for c in COMPRESSIONS:
            for contender in CONTENDERS[1:]:
                assert sum(line.startswith(f"| {c}x | {LABELS[contender]} |") for line in rows) == 2, (network, c)
        assert (tmp_path / "docs" / "benchmarks" / f"accuracy_vs_flatbuffer_{network}.png").stat().st_size > 0
        assert (tmp_path / "docs" / "benchmarks" / f"dynhp_trajectory_{network}.png").stat().st_size > 0
        assert f"](benchmarks/dynhp_trajectory_{network}.png)" in section


def test_report_shows_seed_spread_and_paired_headline(results_file, tmp_path):
    text = write_report(results_file, tmp_path / "b.md", tmp_path / "img")

    headline = _section(text, "Headline: int8 accuracy on TFLM, differences in percentage points")
    for c in COMPRESSIONS:
        assert headline.count(f"| {c}x |") == len(NETWORKS)
    # dense 1x float accuracy: seeds 0.89 and 0.891 -> 89.05 ± 0.07
    assert "| 1x | dense baseline | 89.05 ± 0.07 |" in text
    # DynHP and tfmot share the synthetic accuracy per seed: a paired difference of exactly 0.
    assert "+0.00 ± 0.00" in headline


def test_sections_other_benchmarks_own_survive_the_report_rewrite(results_file, tmp_path):
    from benchmarks.sections import replace_section

    markdown = tmp_path / "b.md"
    write_report(results_file, markdown, tmp_path / "img")
    replace_section(markdown, "lowrank", "## Low-rank\n\nfirst\n")
    replace_section(markdown, "lowrank", "## Low-rank\n\nsecond\n")  # replaced in place, not added twice
    text = write_report(results_file, markdown, tmp_path / "img")
    assert markdown.read_text() == text
    assert text.count("## Low-rank") == 1 and "second" in text and "first" not in text
    assert text.index("## Low-rank") > text.index(f"## {NETWORKS['lenet5']}")
