"""Low-rank online training: the accumulator, the quantized write rule, write counting, the grid."""
import numpy as np
import pytest
import tensorflow as tf

from dynhp_tf._keras import keras
from dynhp_tf.lowrank import LowRankAccumulator, unbiased_reduction
from dynhp_tf.online import OnlineTrainer, quantized_write

L = keras.layers


def _stream(n, m, terms, true_rank, k=1, seed=0):
    """`terms` random (n, k) x (m, k) terms whose sum has rank <= true_rank."""
    rng = np.random.default_rng(seed)
    basis_a, basis_b = rng.normal(size=(n, true_rank)), rng.normal(size=(m, true_rank))
    for _ in range(terms):
        mix = rng.normal(size=(true_rank, k))
        yield basis_a @ mix, basis_b @ rng.normal(size=(true_rank, true_rank)) @ mix


@pytest.mark.parametrize("unbiased", [True, False])
@pytest.mark.parametrize("true_rank,rank,k", [(1, 1, 1), (3, 4, 1), (4, 4, 1), (2, 4, 6), (3, 4, 40)])
def test_accumulator_is_exact_when_the_true_rank_is_at_most_r(unbiased, true_rank, rank, k):
    acc, total = LowRankAccumulator(12, 30, rank, unbiased=unbiased), np.zeros((12, 30))
    for a, b in _stream(12, 30, 40, true_rank, k):
        acc.add(a, b)
        total += a @ b.T
    np.testing.assert_allclose(acc.value(), total, atol=1e-9 * np.abs(total).max())


@pytest.mark.parametrize("unbiased", [True, False])
def test_accumulator_error_decreases_with_rank_on_random_data(unbiased):
    def error(rank):
        errors = []
        for seed in range(3):
            rng = np.random.default_rng(seed)
            acc, total = LowRankAccumulator(16, 40, rank, unbiased=unbiased, seed=seed), 0.0
            for _ in range(60):
                a, b = rng.normal(size=(16, 1)), rng.normal(size=(40, 1))
                acc.add(a, b)
                total = total + a @ b.T
            errors.append(np.linalg.norm(acc.value() - total) / np.linalg.norm(total))
        return np.mean(errors)

    errors = [error(r) for r in (1, 2, 4, 8)]
    assert all(a > b for a, b in zip(errors, errors[1:])), errors


def test_unbiased_reduction_keeps_rank_and_expectation():
    s, rng = np.array([5.0, 3.0, 1.0, 0.9, 0.5, 0.2]), np.random.default_rng(0)
    draws = np.array([unbiased_reduction(s, 3, rng) for _ in range(20000)])
    assert (np.count_nonzero(draws, axis=1) <= 3).all()
    assert (draws[:, :2] == s[:2]).all()  # the values above c are kept exactly
    np.testing.assert_allclose(draws.mean(axis=0), s, rtol=0.03)


def test_quantized_write_writes_nothing_below_its_threshold():
    rng = np.random.default_rng(0)
    q, scales = rng.integers(-100, 100, size=(10, 20)).astype(np.int16), rng.uniform(0.01, 0.1, 10)
    delta = 0.4 * scales[:, None] * rng.uniform(-1, 1, size=q.shape)  # every entry rounds to no change
    delta.flat[[3, 50, 199]] = 0.6 * scales[[0, 2, 9]] * np.array([1, -1, 1])  # 3 of 200 entries do
    new, written = quantized_write(q, delta, scales, min_fraction=0.02)
    assert not written and new is q
    new, written = quantized_write(q, delta, scales, min_fraction=0.015)
    assert written
    assert np.flatnonzero(new != q).tolist() == [3, 50, 199]
    assert (new - q).flat[[3, 50, 199]].tolist() == [1, -1, 1]


def test_quantized_write_clips_to_the_int8_range():
    q = np.array([[126, -126]], np.int16)
    new, written = quantized_write(q, np.array([[5.0, -5.0]]), np.array([1.0]), min_fraction=0.0)
    assert written and new.tolist() == [[127, -127]]


def _cnn():
    keras.utils.set_random_seed(0)
    return keras.Sequential([
        keras.Input((10, 10, 1)),
        L.Conv2D(4, 3, padding="same", activation="relu", name="c1"), L.MaxPooling2D(),
        L.Conv2D(6, 3, strides=2, activation="relu", name="c2"), L.Flatten(),
        L.Dense(8, activation="relu", name="d1"), L.Dense(3, activation="softmax", name="out"),
    ])


def _data(n, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 10, 10, 1)).astype("float32")
    return x, (x[:, :5].mean(axis=(1, 2, 3)) > 0).astype("int64") + (x[:, 5:].mean(axis=(1, 2, 3)) > 0.1)


def test_per_sample_terms_give_the_kernel_gradients():
    model = _cnn()
    trainer = OnlineTrainer(model, method="sgd")
    x, y = _data(1)
    output, terms = trainer.gradients(x[0], y[0])
    kernels = [model.get_layer(name).kernel for name in ("c1", "c2", "d1", "out")]
    with tf.GradientTape() as tape:
        prediction = model(x[:1])
        loss = keras.losses.SparseCategoricalCrossentropy()(y[:1], prediction)
    for (errors, inputs), kernel, gradient in zip(terms, kernels, tape.gradient(loss, kernels)):
        mine = (errors.T @ inputs).T.reshape(tuple(kernel.shape))
        np.testing.assert_allclose(mine, gradient.numpy(), atol=1e-6)
    np.testing.assert_allclose(output, np.asarray(prediction)[0], atol=1e-6)


@pytest.mark.parametrize("method,rounding", [("lowrank", "nearest"), ("sgd", "stochastic")])
def test_writes_are_counted_exactly_and_the_model_holds_the_grid(method, rounding):
    model = _cnn()
    trainer = OnlineTrainer(model, method=method, rounding=rounding, learning_rate=0.05, pseudo_batch=5)
    x, y = _data(40)
    counted = {name: np.zeros_like(w, dtype=np.int64) for name, w in trainer.int8_kernels().items()}
    for xi, yi in zip(x, y):
        before = trainer.int8_kernels()
        trainer.step(xi, yi)
        for name, after in trainer.int8_kernels().items():
            counted[name] += after != before[name]
    writes = trainer.write_counts()
    assert sum(int(w.sum()) for w in writes.values()) > 0
    for name, count in counted.items():
        np.testing.assert_array_equal(writes[name], count)
    for entry in trainer.layers:  # the Keras kernel is exactly int8 value x scale
        kernel = np.asarray(entry.layer.kernel.numpy())
        np.testing.assert_array_equal(kernel, entry.kernel())
    summary = trainer.summary()
    assert summary["writes_max"] == max(int(w.max()) for w in counted.values())
    assert summary["aux_bytes"] == (4 * 4 * ((4 + 9) + (6 + 36) + (8 + 24) + (3 + 8)) if method == "lowrank" else 0)


def test_a_threshold_no_update_reaches_leaves_the_kernels_untouched():
    model = _cnn()
    trainer = OnlineTrainer(model, learning_rate=1e-4, write_fraction=1.0, pseudo_batch=1)
    start = trainer.int8_kernels()
    bias = model.get_layer("out").bias.numpy().copy()
    trainer.adapt(*_data(20))
    for name, q in trainer.int8_kernels().items():
        np.testing.assert_array_equal(q, start[name])
    assert all(int(w.sum()) == 0 for w in trainer.write_counts().values())
    assert not np.array_equal(model.get_layer("out").bias.numpy(), bias)  # biases learn every sample


def test_low_rank_training_learns_a_simple_stream():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), L.Dense(8, activation="relu"), L.Dense(2)])
    rng = np.random.default_rng(1)
    x = rng.normal(size=(600, 6)).astype("float32")
    y = (x[:, 0] - x[:, 1] > 0).astype("int64")
    trainer = OnlineTrainer(model, learning_rate=0.1, pseudo_batch=10, scales=0.02)
    untrained = np.mean(np.argmax(model(x[-150:]), axis=1) == y[-150:])
    hits = trainer.adapt(x, y) == y
    assert untrained < 0.75 and hits[-150:].mean() > 0.9, (untrained, hits[-150:].mean())
    assert trainer.summary()["writes_max"] < 600 / 10


def test_bad_arguments_are_refused_by_name():
    model = _cnn()
    with pytest.raises(ValueError, match="method"):
        OnlineTrainer(model, method="adam")
    with pytest.raises(ValueError, match="layers"):
        OnlineTrainer(model, layers=["nope"])
    with pytest.raises(ValueError, match="layer 'c1' do not cover"):
        OnlineTrainer(model, scales=1e-6)
    with pytest.raises(ValueError, match="scales for layer 'd1'"):
        OnlineTrainer(model, scales={"c1": 1.0, "c2": 1.0, "d1": [1.0, 2.0], "out": 1.0})
    inputs = keras.Input((3,))
    with pytest.raises(ValueError, match="Sequential"):
        OnlineTrainer(keras.Model(inputs, L.Dense(2)(inputs)))


@pytest.mark.parametrize("per_channel", [False, True])
def test_weight_scales_read_the_exported_grid(per_channel):
    from dynhp_tf.converters.errors import ExportError
    from dynhp_tf.converters.quantize import quantize_int8
    from dynhp_tf.converters.weight_grid import weight_scales

    model = _cnn()
    flatbuffer = quantize_int8(model, _data(32)[0], per_channel_dense=per_channel)
    scales = weight_scales(flatbuffer, model)
    assert list(scales) == ["c1", "c2", "d1", "out"]
    assert [s.size for s in scales.values()] == [4, 6, 8 if per_channel else 1, 3 if per_channel else 1]
    trainer = OnlineTrainer(model, scales=scales)  # the exported int8 values are the trainer's start
    kernel = model.get_layer("c1").kernel.numpy()
    np.testing.assert_allclose(trainer.int8_kernels()["c1"].T.reshape(kernel.shape) * scales["c1"], kernel)
    with pytest.raises(ExportError, match="layer 'c1'"):
        weight_scales(flatbuffer, _cnn_other())


def _cnn_other():
    model = _cnn()
    model.get_layer("c1").kernel.assign(model.get_layer("c1").kernel.numpy() * 3.0)
    return model
