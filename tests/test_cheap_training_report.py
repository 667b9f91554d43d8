"""The cheap-training report rewrites only its own section of docs/benchmarks.md."""
import json

from benchmarks import cheap_training


def test_report_replaces_only_its_section_and_states_the_target(tmp_path, monkeypatch):
    results = json.loads(cheap_training.RESULTS.read_text())
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Others' report\n\nkept text\n")
    monkeypatch.setattr(cheap_training, "DOC", doc)
    cheap_training.write_doc(cheap_training.report(results))
    first = doc.read_text()
    cheap_training.write_doc(cheap_training.report(results))
    assert doc.read_text() == first  # rewriting replaces the section, does not append another
    assert first.startswith("# Others' report\n\nkept text\n") and first.count(cheap_training.BEGIN) == 1
    assert "fewer FLOPs" in first and "| plain |" in first


def test_decay_section_pairs_the_target_against_plain_with_the_same_schedule_and_constant_lr():
    variant = "filter R=0.2 + error maps g1=0 after conv 1, random explore, filter 4/8"
    accuracy = {"plain": (0.87, 0.88), "plain, constant LR": (0.86, 0.88), variant: (0.867, 0.875)}
    flops = {"plain": 1e12, "plain, constant LR": 1e12, variant: 0.49e12}
    runs = [{"network": "cnn", "variant": v, "seed": s, "test_accuracy": a[s], "train_flops": flops[v],
             "fit_seconds": 10.0, "epochs": 8, "kept_fraction": [1.0]} for v, a in accuracy.items() for s in (0, 1)]
    meta = {"decay": "cosine", "flops_budget": 0.5, "train_samples": 10000, "test_samples": 10000, "seeds": 2,
            "minutes": 1.0, "host": "test", "framework": "Keras 3", "networks": ["cnn"], "variants": list(accuracy)}
    text = "\n".join(cheap_training.decay_section({"meta": meta, "runs": runs}))
    assert "learning rate 0.001 decayed to 0 over each run's budget (cosine)" in text
    # Paired per seed: (-0.3 - 0.5) / 2 against plain (cosine), (+0.7 - 0.5) / 2 against constant LR.
    assert f"Reached (against plain, paired per seed):\n\n- {variant}: 51% fewer FLOPs, -0.40 points (2 seeds): met." in text
    assert f"Reached (against plain, constant LR, paired per seed):\n\n- {variant}: 51% fewer FLOPs, +0.10 points" in text
