"""Issue 16's protocol: cost-aware ranking, the prune-once contender and the three fairness modes.

The runner trains on tf_keras only (tfmot needs it), so its checks run in the suite's tf_keras
pass; the ranking and the command line are checked on both frameworks.
"""
import json
import math
import os

import numpy as np
import pytest

from benchmarks import compare
from dynhp_tf._keras import keras
from dynhp_tf.groups import pruning_groups
from dynhp_tf.selection import FLOOR_NEURONS, layer_floors, select

L = keras.layers


def _two_groups():
    """Group 0: 50 neurons costing 10 + 1 + 5 = 16 params each; group 1: 5 costing 50 + 1 + 3 = 54."""
    model = keras.Sequential([keras.Input((10,)), L.Dense(50, activation="relu"), L.Dense(5, activation="relu"),
                              L.Dense(3)])
    graph = pruning_groups(model)
    return graph, [np.ones(g.size, bool) for g in graph.groups]


def test_cost_aware_ranking_removes_the_expensive_neurons_first():
    graph, keep = _two_groups()
    scores = [np.ones(g.size) for g in graph.groups]  # equal importance: only cost can decide
    target = graph.params() - 2 * 54

    by_score = select(graph, keep, scores, target)
    by_cost = select(graph, keep, scores, target, cost="params")

    assert [int(k.sum()) for k in by_cost] == [50, 3]  # two 54-param neurons meet the target
    assert int(by_score[0].sum()) < 50  # the default ranks by score only: the cheap group loses neurons
    assert graph.params([int(k.sum()) for k in by_cost]) <= target


def test_cost_aware_ranking_still_follows_scores_within_a_group():
    graph, keep = _two_groups()
    scores = [np.ones(50), np.array([5.0, 1.0, 4.0, 3.0, 2.0])]
    kept = select(graph, keep, scores, graph.params() - 2 * 54, cost="macs")
    assert kept[1].tolist() == [True, False, True, True, False]


def test_cost_aware_ranking_refuses_an_unknown_cost():
    graph, keep = _two_groups()
    with pytest.raises(ValueError, match="cost"):
        select(graph, keep, [np.ones(g.size) for g in graph.groups], 100, cost="flops")


def _cnn_model():
    return keras.Sequential([  # benchmarks.runner's LeNet-5-style CNN
        keras.Input((28, 28, 1)), L.Conv2D(6, 5, padding="same", activation="relu"), L.MaxPooling2D(),
        L.Conv2D(16, 5, activation="relu"), L.MaxPooling2D(), L.Flatten(), L.Dense(120, activation="relu"),
        L.Dense(10, activation="softmax")])


def _cnn_graph():
    return pruning_groups(_cnn_model())


def test_layer_floor_keeps_a_layer_that_scores_would_empty():
    graph = _cnn_graph()
    keep = [np.ones(g.size, bool) for g in graph.groups]
    # Scores are normalised per group: one strong filter makes conv1's others look useless.
    scores = [np.array([1.0, 0.01, 0.01, 0.01, 0.01, 0.01]), np.ones(16), np.ones(120)]
    target = graph.params() / 10
    assert int(select(graph, keep, scores, target)[0].sum()) == 1
    widths = [int(k.sum()) for k in select(graph, keep, scores, target, layer_floor=0.7)]
    floor = layer_floors(graph, target, 0.7, [1, 1, 1])
    # conv1 keeps all 6 filters, conv2 nearly FLOOR_NEURONS, fc1 most of 0.7 of its uniform 36;
    # the floors shrank together to fit the target.
    assert floor == [6, 7, 21] and all(w >= f for w, f in zip(widths, floor))
    assert graph.params(floor) <= graph.params(widths) <= target


def test_layer_floor_is_the_uniform_share_where_that_keeps_enough_neurons():
    graph, keep = _two_groups()  # 50 and 5 neurons
    target = graph.params() / 2
    floor = layer_floors(graph, target, 0.7, [1, 1])
    assert floor[1] == min(5, FLOOR_NEURONS)  # a group narrower than that keeps its width while it fits
    # Group 0: 0.7 of the width that pruning both groups by one ratio to the target leaves it.
    uniform = max(math.ceil(r / 1000 * 50) for r in range(1, 1001)
                  if graph.params([math.ceil(r / 1000 * 50), math.ceil(r / 1000 * 5)]) <= target)
    assert math.floor(0.7 * uniform) <= floor[0] <= math.ceil(0.7 * uniform) and graph.params(floor) <= target


def test_layer_floor_gives_way_to_the_target_beside_min_neurons():
    graph = _cnn_graph()
    keep = [np.ones(g.size, bool) for g in graph.groups]
    target = graph.params() / 10
    # min_neurons=8 keeps conv1's 6 and conv2 >= 8; 0.7 of fc1's uniform width is 25: together
    # 6-8-25, 6,649 params, which once ended a "10x" run at 7.8x without a word.
    assert graph.params([6, 8, 25]) > target
    widths = [int(k.sum()) for k in select(graph, keep, [np.ones(g.size) for g in graph.groups], target,
                                           min_neurons=8, layer_floor=0.7)]
    assert graph.params(widths) <= target and widths[:2] == [6, 8]


def test_device_limits_keep_the_neuron_floor_unless_it_costs_them_parameters():
    from dynhp_tf.budget import device_plan, largest_fitting
    from dynhp_tf.callback import DynHPCallback
    model = _cnn_model()
    graph = pruning_groups(model)
    plan = device_plan(model, graph)
    keep = [np.ones(g.size, bool) for g in graph.groups]
    scores = [np.linspace(1, 2, g.size) for g in graph.groups]
    limits = {"arena_bytes": 8000}  # the dense CNN needs ~8,440: conv1's maps are most of it
    free, _ = largest_fitting(plan, keep, scores, limits, layer_floor=0.7)
    floored, _ = largest_fitting(plan, keep, scores, limits, layer_floor=0.7, floor_neurons=FLOOR_NEURONS)
    # A floor the arena cannot see keeps conv1 wide and shrinks everything else instead.
    assert free > 4 * floored

    def widths(**limits):
        keras.utils.set_random_seed(0)
        model = _cnn_model()
        model.compile("adam", "sparse_categorical_crossentropy")
        x = np.random.default_rng(0).normal(size=(128, 28, 28, 1)).astype("float32")
        cb = DynHPCallback(end_epoch=1, verbose=0, **limits)
        model.fit(cb.batches(x, np.arange(128) % 10, batch_size=32), epochs=2, callbacks=[cb], verbose=0)
        return [int(k.sum()) for k in cb.masks.keep], cb.history[-1]

    # So under a binding arena limit the callback prunes without the neuron floor; under limits
    # that the floor does not tighten (here the board's flash, loose, beside a 10x target) it
    # keeps it, as without limits: conv1 keeps its 6 filters.
    plain, _ = widths(target_compression=10)
    loose, _ = widths(target_compression=10, flatbuffer_bytes=200_000)
    tight, record = widths(arena_bytes=8000)
    assert plain[0] == loose[0] == 6 and loose == plain
    assert tight[0] < 6 and record["dynhp/arena_bytes"] <= 8000 and record["dynhp/params"] > 4 * floored


def test_compare_modes_write_separate_results_and_parse_full_data():
    args = compare.parse_args(["--quick", "--mode", "memory", "--full-data", "--ranking-cost", "params"])
    config = compare.config_from_args(args)
    assert (config["fairness"], config["train_samples"], config["ranking_cost"]) == ("memory", 60000, "params")
    paths = {compare.outputs("quick", mode)[0] for mode in compare.FAIRNESS}
    assert len(paths) == 3 and compare.outputs("quick", "epochs") == compare.OUTPUTS["quick"]
    assert compare.outputs("quick", "epochs", "params")[0] != compare.OUTPUTS["quick"][0]
    with pytest.raises(SystemExit):
        compare.parse_args(["--mode", "time"])
    assert compare.config_from_args(compare.parse_args(["--quick", "--min-neurons", "4"]))["min_neurons"] == 4
    with pytest.raises(SystemExit, match="min-neurons"):
        compare.config_from_args(compare.parse_args(["--quick", "--min-neurons", "0"]))


legacy_only = pytest.mark.skipif(os.environ.get("TF_USE_LEGACY_KERAS") != "1",
                                 reason="benchmarks.runner runs on tf_keras; checked in the suite's tf_keras pass")


@pytest.fixture(scope="module")
def runner():
    pytest.importorskip("tensorflow_model_optimization")
    from benchmarks import runner

    return runner


@pytest.fixture(scope="module")
def tiny_data():
    rng = np.random.default_rng(0)
    x = rng.random((192, 28, 28)).astype("float32")
    y = (x[:, :14].mean(axis=(1, 2)) > x[:, 14:].mean(axis=(1, 2))).astype("int64")
    return (x, y), (x[:64], y[:64])


@legacy_only
def test_plan_runs_prune_once_after_the_dynhp_run_it_copies(runner):
    plan = runner.planned_runs({"seeds": 1, "networks": ["lenet300100"], "compressions": [10]})
    names = [p[1] for p in plan]
    assert "prune_once" in names and names.index("prune_once") > names.index("dynhp")
    # A subset (a mode whose other contenders train identically elsewhere) keeps that order.
    subset = runner.planned_runs({"seeds": 1, "networks": ["lenet5"], "compressions": [10],
                                  "contenders": ["prune_once", "dynhp"]})
    assert [p[1] for p in subset] == ["dynhp", "prune_once"]


@legacy_only
def test_prune_once_prunes_to_the_target_then_fine_tunes(runner, tiny_data):
    cfg = {"epochs": 4, "fairness": "epochs"}
    dense_params = runner.lenet300100().count_params()
    model, facts = runner.train_prune_once(runner.lenet300100, tiny_data, cfg, 0, dense_params / 10)
    assert dense_params / 10 - 400 < model.count_params() <= dense_params / 10  # within one fc1 neuron
    assert 1 <= facts["prune_once_epoch"] < cfg["epochs"]  # dense first, fine-tuning after
    assert facts["memory_final_bytes"] < facts["memory_peak_bytes"]
    assert facts["optimizer_steps"] == cfg["epochs"] * 6  # 192 samples / 32 = 6 steps per epoch


@legacy_only
def test_an_earlier_schedule_end_moves_dynhp_prune_once_and_tfmot_together(runner, tiny_data):
    cfg = {"epochs": 4, "fairness": "epochs", "end_epoch": 0}  # the default would end at epoch 2
    dense_params = runner.lenet300100().count_params()
    _, dynhp = runner.train_dynhp(runner.lenet300100, tiny_data, cfg, 0, 10, grow_batch=False)
    assert dynhp["trajectory"][1]["params"] <= dense_params / 10  # epoch 1 already trains the final size
    _, once = runner.train_prune_once(runner.lenet300100, tiny_data, cfg, 0, dense_params / 10)
    assert once["prune_once_epoch"] == 1  # dense for epoch 0 only, then three epochs of fine-tuning
    _, tfmot = runner.train_tfmot(runner.lenet300100, tiny_data, cfg, 0, dense_params / 10)
    assert tfmot["tfmot_end_step"] == 6  # final sparsity after epoch 0's 6 steps
    with pytest.raises(SystemExit):
        compare.config_from_args(compare.parse_args(["--quick", "--end-epoch", "2"]))  # nothing left to fine-tune
    assert compare.config_from_args(compare.parse_args(["--quick", "--end-epoch", "1"]))["end_epoch"] == 1


@legacy_only
def test_equal_steps_gives_growing_dynhp_dense_training_step_count(runner, tiny_data):
    cfg = {"epochs": 3, "fairness": "steps"}
    _, facts = runner.train_dynhp(runner.lenet300100, tiny_data, cfg, 0, 10, grow_batch=True)
    assert facts["batch_size_final"] > runner.BATCH_SIZE
    assert facts["optimizer_steps"] == runner.step_budget(cfg, 192) == 18
    assert facts["epochs_trained"] > cfg["epochs"]  # larger batches: more epochs for the same steps


@legacy_only
def test_dynhp_keeps_the_callbacks_batch_cap_in_every_fairness_mode(runner):
    import inspect

    default = inspect.signature(runner.DynHPCallback).parameters["max_batch_size"].default
    for fairness in runner.FAIRNESS:
        assert runner.dynhp_settings({"fairness": fairness})["max_batch_size"] == default
        assert runner.dynhp_settings({"fairness": fairness, "max_batch_size": 1024})["max_batch_size"] == 1024
        fixed = runner.dynhp_settings({"fairness": fairness, "max_batch_size": 1024}, grow_batch=False)
        assert fixed["max_batch_size"] == runner.BATCH_SIZE


@legacy_only
def test_equal_memory_trains_narrow_networks_at_the_largest_batch_that_fits(runner, tiny_data):
    cfg = {"epochs": 2, "fairness": "memory"}
    budget = runner.training_memory(runner.lenet300100(), runner.BATCH_SIZE, "adam").total
    widths = {"fc1": 290, "fc2": 100}  # ~9k params fewer: room for a few dozen more samples, not all 192
    _, facts = runner.train_dense(runner.lenet300100, tiny_data, cfg, 0, widths=widths)
    batch = facts["batch_size_final"]
    assert batch > runner.BATCH_SIZE and facts["memory_peak_bytes"] <= budget
    bigger = runner.training_memory(runner.lenet300100(widths), batch + 1, "adam").total
    assert bigger > budget and batch < 192  # the largest batch that fits
    _, dense = runner.train_dense(runner.lenet300100, tiny_data, cfg, 0)
    assert dense["batch_size_final"] == runner.BATCH_SIZE and dense["memory_peak_bytes"] == budget


def test_payoff_section_has_a_table_per_fairness_mode_and_is_labelled_quick(tmp_path, monkeypatch):
    from benchmarks import payoff
    from benchmarks.sections import kept_sections

    def results(fairness, cost=None, dynhp=0.84):
        runs = []
        for contender, accuracy, fits in (("dense", 0.85, True), ("dynhp", dynhp, True), ("tfmot", 0.86, False),
                                          ("prune_once", 0.81, True)):
            runs.append({"network": "lenet5", "contender": contender, "seed": 0, "int8_tflm_accuracy": accuracy,
                         "compression": None if contender == "dense" else 10, "params": 100,
                         "flatbuffer_bytes": 1000, "arena_bytes": 300, "memory_peak_bytes": 10 if fits else 12,
                         "fits_memory_budget": fits, "optimizer_steps": 375, "batch_size_final": 32,
                         "widths": {"conv1": 6 if cost else 1}})
        meta = {"config": {"seeds": 1, "epochs": 3, "train_samples": 4000, "test_samples": 2000},
                "status": "complete", "networks": {"lenet5": {"title": "LeNet-5-style CNN"}}}
        return {"meta": meta, "runs": runs}

    def outputs(mode, fairness="epochs", cost=None):
        path = tmp_path / f"{mode}_{fairness}_{cost}.json"
        return path, None, None

    # Equal epochs in one file, equal memory in a per-network part (run apart); steps not run.
    outputs("quick", "epochs")[0].write_text(json.dumps(results("epochs")))
    (tmp_path / "quick_memory_lenet5.json").write_text(json.dumps(results("memory")))
    (tmp_path / "quick_epochs_cost-params.json").write_text(json.dumps(results("epochs", "params")))  # an attempt
    # A later attempt is measured against the defaults' run, not the base.
    defaults = tmp_path / "quick_epochs_floor-0.7-growth-after-schedule.json"
    defaults.write_text(json.dumps(results("epochs", dynhp=0.845)))
    (tmp_path / "quick_epochs_end-epoch-3.json").write_text(json.dumps(results("epochs", dynhp=0.86)))
    monkeypatch.setattr(payoff.compare, "outputs", outputs)
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n")

    payoff.main(["--quick", "--output", str(doc)])

    text = kept_sections(doc.read_text())
    assert text.startswith("<!-- section:payoff -->") and "Quick mode only, not the full protocol" in text
    assert "### Equal epochs" in text and "### Equal memory" in text
    assert "Not run yet: `python -m benchmarks.compare --quick --mode steps`" in text
    assert "| 10x | tfmot prune_low_magnitude | 86.00 | -2.00 |" in text and "| no |" in text
    assert "| 10x | prune once + fine-tune | 81.00 | +3.00 |" in text
    assert "| 10x | prune once + fine-tune | 81.00 |" in text.split("### Equal memory")[1]  # the part file
    assert "| 10x | dense baseline | 85.00 | -1.00 |" in text
    assert "ranking_cost='params'" in text and "| 1 | 6 |" in text
    assert "| 10x | DynHP (growing batch) | 84.50 | 86.00 | +1.50 |" in text.split("end_epoch=3")[1]

    # An attempt trained on another protocol than its base is refused, not paired.
    other = results("epochs", dynhp=0.86)
    other["meta"]["config"]["epochs"] = 4
    (tmp_path / "quick_epochs_end-epoch-3.json").write_text(json.dumps(other))
    with pytest.raises(SystemExit, match="end-epoch-3: expected the base's protocol, got epochs 4 vs 3"):
        payoff.main(["--quick", "--output", str(doc)])


def test_reuse_copies_only_the_contenders_that_train_identically_and_checks_the_budget(tmp_path):
    from benchmarks.reuse import reuse

    def write(name, fairness, contenders, epochs=10, widths=None):
        runs = [{"network": "lenet5", "contender": c, "seed": 0, "compression": None if c == "dense" else 10,
                 "wall_seconds": 1.0, "int8_tflm_accuracy": 0.5, "widths": widths or {"conv1": 6},
                 "memory_peak_bytes": 1000}
                for c in contenders]
        meta = {"config": {"epochs": epochs, "seeds": 1, "fairness": fairness}, "planned_runs": len(runs),
                "completed_runs": len(runs)}
        (tmp_path / name).write_text(json.dumps({"meta": meta, "runs": runs}))
        return tmp_path / name

    memory = write("m.json", "memory", ["dense", "dynhp", "dynhp_fixed_batch", "tfmot", "scratch"])
    epochs = write("e.json", "epochs", ["dynhp", "scratch"])
    assert reuse(memory, epochs) == 3
    result = json.loads(epochs.read_text())
    assert sorted(r["contender"] for r in result["runs"]) == ["dense", "dynhp", "dynhp_fixed_batch", "scratch",
                                                              "tfmot"]
    assert result["meta"]["completed_runs"] == 5 and result["runs"][-1]["copied_from"] == "m.json"
    # Dense's modeled memory follows the target's memory model (it is the target's budget).
    target = json.loads(epochs.read_text())
    target["meta"]["networks"] = {"lenet5": {"dense_memory": {"total": 2000}}}
    epochs.write_text(json.dumps(target))
    reuse(memory, epochs, ["dense"])
    (dense,) = [r for r in json.loads(epochs.read_text())["runs"] if r["contender"] == "dense"]
    assert dense["memory_peak_bytes"] == 2000 and dense["memory_remodeled_from"] == 1000
    with pytest.raises(SystemExit, match="differ beyond the fairness mode"):
        reuse(write("short.json", "memory", ["dense"], epochs=3), epochs)
    with pytest.raises(SystemExit, match="train alike only in the epochs and steps modes, not epochs and memory"):
        reuse(memory, epochs, ["scratch"])  # in the memory mode scratch trains at a larger batch
    with pytest.raises(SystemExit, match="can be copied"):
        reuse(memory, epochs, ["dynhp"])
    # Scratch and prune-once follow DynHP's widths: copied from equal epochs into equal steps only
    # where the steps run's DynHP reached the same widths.
    source = write("e2.json", "epochs", ["dynhp", "scratch", "prune_once"])
    assert reuse(source, write("s.json", "steps", ["dynhp"]), ["scratch", "prune_once"]) == 2
    with pytest.raises(SystemExit, match="must be rerun"):
        reuse(source, write("s2.json", "steps", ["dynhp"], widths={"conv1": 5}), ["scratch"])
    # An attempt at other DynHP settings reuses only the dense baseline, which does not read them.
    attempt = write("a.json", "epochs", ["dynhp"])
    config = json.loads(attempt.read_text())
    config["meta"]["config"]["layer_floor"] = 0.7
    attempt.write_text(json.dumps(config))
    assert reuse(epochs, attempt, ["dense"]) == 1
    with pytest.raises(SystemExit, match="DynHP settings"):
        reuse(write("short2.json", "epochs", ["dense"], epochs=3), attempt, ["dense"])
    with pytest.raises(SystemExit, match="differ beyond the fairness mode"):
        reuse(epochs, attempt, ["dense", "dynhp_fixed_batch"])  # the fixed batch reads the layer floor
    del config["meta"]["config"]["layer_floor"]
    config["meta"]["config"]["batch_growth"] = "after_schedule"  # the fixed batch never grows: unread
    attempt.write_text(json.dumps(config))
    assert reuse(epochs, attempt, ["dense", "dynhp_fixed_batch"]) == 2
    # Settings compare as resolved: an explicit default equals an omitted one, and the layer
    # floor's neuron count (session 11's library change, recorded in meta) is read by the fixed batch.
    floor = write("f.json", "memory", ["dynhp"])
    meta = json.loads(floor.read_text())
    meta["meta"].update(dynhp_settings={"layer_floor": 0.7}, layer_floor_neurons=8)
    floor.write_text(json.dumps(meta))
    explicit = json.loads(epochs.read_text())
    explicit["meta"]["config"]["layer_floor"] = 0.7
    explicit["meta"]["layer_floor_neurons"] = 8
    epochs.write_text(json.dumps(explicit))
    assert reuse(epochs, floor, ["dense", "dynhp_fixed_batch"]) == 2
    del explicit["meta"]["layer_floor_neurons"]  # a run from before the neuron floor
    epochs.write_text(json.dumps(explicit))
    assert reuse(epochs, floor, ["dense"]) == 1
    with pytest.raises(SystemExit, match="differ beyond the fairness mode"):
        reuse(epochs, floor, ["dynhp_fixed_batch"])


def test_distillation_loss_is_plain_cross_entropy_until_a_teacher_is_taken_then_mixes_it_in():
    from benchmarks.distill import Distillation, encode_labels

    d = Distillation(samples=4, classes=3, alpha=0.5, temperature=2.0)
    y_pred = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4], [0.5, 0.4, 0.1]], "float32")
    labels = np.array([0, 2, 1, 1])
    encoded = encode_labels(labels, 3)
    ce = -np.log(y_pred[np.arange(4), labels])
    np.testing.assert_allclose(d.loss(encoded, y_pred), ce, rtol=1e-5)
    np.testing.assert_allclose(d.accuracy(encoded, y_pred), [1, 1, 0, 0])
    teacher = np.array([[0.1, 0.8, 0.1]] * 4, "float32")
    d.teacher.assign(d._soften(teacher))
    soft_t = np.exp(np.log(teacher) / 2) / np.exp(np.log(teacher) / 2).sum(1, keepdims=True)
    soft_s = np.exp(np.log(y_pred) / 2) / np.exp(np.log(y_pred) / 2).sum(1, keepdims=True)
    kl = (soft_t * np.log(soft_t / soft_s)).sum(1)
    np.testing.assert_allclose(d.loss(encoded, y_pred), 0.5 * ce + 0.5 * 4 * kl, rtol=1e-5)
    # Plain labels (the test set in evaluate) carry no index: cross-entropy only.
    np.testing.assert_allclose(d.loss(labels.astype("float32"), y_pred), ce, rtol=1e-5)


@legacy_only
def test_distillation_attempt_takes_the_teacher_before_the_first_event_and_changes_training_after(runner, tiny_data):
    cfg = {"epochs": 3, "fairness": "epochs"}
    plain_model, plain = runner.train_dynhp(runner.lenet300100, tiny_data, cfg, 0, 10, grow_batch=False)
    taught_model, taught = runner.train_dynhp(runner.lenet300100, tiny_data, dict(cfg, distill=["first", 0.9, 2.0]), 0, 10,
                                   grow_batch=False)
    assert taught["distill_teacher_epochs"] == [0]
    accuracy = lambda facts: [t["test_accuracy"] for t in facts["trajectory"]]  # noqa: E731
    assert accuracy(taught)[0] == accuracy(plain)[0]  # epoch 0 trains on plain cross-entropy
    out = lambda model: model.predict(tiny_data[1][0], verbose=0)  # noqa: E731
    assert not np.allclose(out(taught_model), out(plain_model))  # the teacher's target changed the rest
    with pytest.raises(SystemExit):
        compare.config_from_args(compare.parse_args(["--quick", "--distill", "later", "0.5", "2"]))
    assert compare.config_from_args(compare.parse_args(["--quick", "--distill", "events", "0.5", "2"]))["distill"] \
        == ["events", 0.5, 2.0]


@legacy_only
def test_warm_restarts_anneal_each_segment_and_restart_after_events(runner, tiny_data):
    from benchmarks.restarts import segments
    from dynhp_tf.schedule import PruningSchedule

    assert segments(PruningSchedule(end_epoch=1), 4) == [[0], [1], [2, 3]]  # events end epochs 0 and 1
    cfg = {"epochs": 3, "fairness": "epochs"}  # events at epochs 0 and 1, epoch 2 fine-tunes
    _, restarts = runner.train_dynhp(runner.lenet300100, tiny_data, dict(cfg, lr_restarts=0.0), 0, 10, grow_batch=False)
    for epoch, first, last in restarts["lr_restart_rates"]:
        assert first == pytest.approx(runner.LEARNING_RATE) and last < 0.1 * first, epoch  # restart, then anneal
    _, anneal = runner.train_dynhp(runner.lenet300100, tiny_data, dict(cfg, lr_anneal_fine_tuning=0.0), 0, 10,
                                   grow_batch=False)
    rates = anneal["lr_restart_rates"]
    assert [r[1] for r in rates[:2]] == [None, None]  # constant while pruning
    assert rates[2][1] == pytest.approx(runner.LEARNING_RATE) and rates[2][2] < 0.1 * rates[2][1]


@legacy_only
def test_sub_epoch_events_prune_inside_the_schedule_epochs_and_still_reach_the_target(runner, tiny_data):
    cfg = {"epochs": 3, "fairness": "epochs", "events_per_epoch": 2}  # events at epochs 0 and 1, 2 fine-tunes
    model, run = runner.train_dynhp(runner.lenet300100, tiny_data, cfg, 0, 10, grow_batch=False)
    inner = run["inner_events"]
    assert [e[0] for e in inner] == [0, 1] and all(e[1] == 3 for e in inner)  # mid-epoch: 6 steps of 32
    # The cubic curve at a quarter and three quarters of the schedule, between the epoch-end events.
    assert [e[2] for e in inner] == pytest.approx([1 - 0.75 ** 3, 1 - 0.25 ** 3])
    dense, final = model.count_params(), run["trajectory"][-1]["params"]  # the user's model stays full width
    assert dense > inner[0][3] > inner[1][3] > final
    assert final <= dense / 10
    with pytest.raises(SystemExit):
        compare.config_from_args(compare.parse_args(["--quick", "--events-per-epoch", "1"]))
