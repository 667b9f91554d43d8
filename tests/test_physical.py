"""The shrink is physical: after a pruning event the train steps run on a narrower network."""
import numpy as np
import pytest

from dynhp_tf import DynHPCallback, narrow_model, pruning_groups
from dynhp_tf._keras import keras
from dynhp_tf.compact import build_optimizer, kept_neurons, narrow_slots, optimizer_slots
from dynhp_tf.memory import memory_for
from tests.models import cnn, compiled, data_for, mlp, residual


def first_kernel(model):
    return next(layer for layer in model.layers if layer.weights).weights[0]


def fit(model, cb, epochs=3, callbacks=(), **kwargs):
    x, y = data_for(model)
    return model.fit(cb.batches(x, y, batch_size=16), epochs=epochs, callbacks=[cb, *callbacks], verbose=0, **kwargs)


@pytest.mark.parametrize("build", [mlp, cnn, residual], ids=["mlp", "cnn", "residual"])
def test_compact_network_trains_and_equals_the_masked_full_width_model(build):
    model = compiled(build())
    seen = []
    probe = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(
        (cb.trainer.compact is not None, len(optimizer_slots(model.optimizer, first_kernel(model))))))
    cb = DynHPCallback(target_compression=3, end_epoch=0, verbose=0)
    fit(model, cb, epochs=3, callbacks=[probe])
    # After the event at epoch 0 a narrow network trains and the full-width slots are freed...
    assert seen[1:] == [(True, 0), (True, 0)]
    compact = cb.compact_model()
    graph = pruning_groups(model)
    for group, keep in zip(graph.groups, cb.masks.keep):
        for producer in group.producers:
            assert compact.get_layer(producer).weights[0].shape[-1] == keep.sum() < group.size
    assert compact.count_params() == cb.history[-1]["dynhp/params"]
    # ...and the user's model holds exactly the narrow network's function, removed neurons zero.
    x = data_for(model, n=32, seed=3)[0]
    np.testing.assert_allclose(np.asarray(compact(x)), np.asarray(model(x)), rtol=1e-5, atol=1e-5)
    # At the end of fit the optimizer's state is back in the user's model, zero where removed.
    kernel, narrow_kernel = first_kernel(model), first_kernel(compact)
    keep = cb.masks.keep[0]
    for full, narrow in zip(optimizer_slots(model.optimizer, kernel), optimizer_slots(compact.optimizer, narrow_kernel)):
        full = np.asarray(full)
        assert np.all(full[..., ~keep] == 0.0)
        np.testing.assert_array_equal(full[..., keep], np.asarray(narrow))
    assert int(model.optimizer.iterations) == int(compact.optimizer.iterations) > 0


@pytest.mark.parametrize("block_bytes", [4 << 20, 0], ids=["constraint-traced", "zeroed-in-place"])
def test_masked_model_trains_on_while_a_narrow_copy_would_cost_more_and_removed_neurons_stay_zero(
        monkeypatch, block_bytes):
    """An event that removes little: the narrow copy beside the full-width weights would take more
    memory than the masked model, so the masked model trains on, with its removed neurons held at 0:
    by the constraint traced into its step (small weights), or set to zero in place after each step
    (weights larger than an in-place write's block: forced here with a block of 0 bytes)."""
    import dynhp_tf.masks

    monkeypatch.setattr(dynhp_tf.masks, "BLOCK_BYTES", block_bytes)
    model = compiled(mlp())
    cb = DynHPCallback(target_compression=1.1, end_epoch=0, verbose=0)
    fit(model, cb, epochs=3)
    assert cb.trainer.compact is None and cb.history[-1]["dynhp/compression"] >= 1.1
    assert cb._zero_after_step == (block_bytes == 0)
    graph = pruning_groups(model)
    assert [k.tolist() for k in kept_neurons(model, graph)] == [k.tolist() for k in cb.masks.keep]
    assert all(h["dynhp/batch_size"] == 16 for h in cb.history)  # nothing freed to grow into
    dense = memory_for(graph, graph.sizes, 16, 2).total
    assert cb.history[-1]["dynhp/train_memory_bytes"] == dense


def test_first_narrow_copy_waits_until_its_buffers_are_at_most_half_the_full_width_ones():
    """A best-fit allocator (TensorFlow's BFC, on GPUs) hands a narrow buffer more than half its
    full-width one that whole freed chunk: at 1.5x the narrow copy alone would take less memory
    than the masked model, but in those chunks more, so the masked model trains on; at 3x every
    narrow weight is at most half its full-width one and the copy trains."""
    from dynhp_tf.memory import reuse_slack

    for target, narrow in ((1.5, False), (3, True)):
        model = compiled(mlp())
        cb = DynHPCallback(target_compression=target, end_epoch=0, verbose=0)
        fit(model, cb, epochs=2)
        graph, kept = cb.graph, cb._kept()
        masked = memory_for(graph, graph.sizes, 16, 2).total
        copy = memory_for(graph, kept, 16, 2, narrow_copy=True).total
        assert copy < masked and (copy + reuse_slack(graph, kept, 2) > masked) == (not narrow)
        assert (cb.trainer.compact is not None) == narrow


def test_narrowing_carries_weights_and_optimizer_slots_exactly():
    model = compiled(mlp(), optimizer=keras.optimizers.Adam(0.01))
    x, y = data_for(model)
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    graph = pruning_groups(model)
    keep = [np.arange(g.size) % 3 != 1 for g in graph.groups]
    narrow = narrow_model(model, graph, keep)
    optimizer = keras.optimizers.Adam(0.01)
    build_optimizer(optimizer, narrow, graph, narrow_slots(model.optimizer, model, graph, keep),
                    model.optimizer.iterations)
    first, second = keep
    np.testing.assert_array_equal(np.asarray(narrow.layers[1].kernel), np.asarray(model.layers[1].kernel)[first][:, second])
    slots = zip(optimizer_slots(model.optimizer, model.layers[1].kernel), optimizer_slots(optimizer, narrow.layers[1].kernel))
    for full, small in slots:
        np.testing.assert_array_equal(np.asarray(small), np.asarray(full)[first][:, second])
    assert int(optimizer.iterations) == int(model.optimizer.iterations) == 8
    # Built with zero initializers (cheaper), it still reports the user's initializers.
    initializers = [(layer.get_config().get("kernel_initializer") or {}).get("class_name") for layer in narrow.layers]
    assert initializers == [(layer.get_config().get("kernel_initializer") or {}).get("class_name")
                            for layer in model.layers] and "Zeros" not in initializers


def test_validation_checkpoints_and_learning_rate_callbacks_see_the_trained_weights(tmp_path):
    model = compiled(mlp(), optimizer=keras.optimizers.Adam(0.01))
    xv, yv = data_for(model, n=64, seed=9)
    weights = []
    lr_zero_from_2 = keras.callbacks.LearningRateScheduler(lambda epoch, lr: 0.0 if epoch >= 2 else lr)
    keep_weights = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: weights.append(np.asarray(model.layers[0].kernel).copy()))
    checkpoint = keras.callbacks.ModelCheckpoint(str(tmp_path / "e{epoch}.weights.h5"), save_weights_only=True)
    cb = DynHPCallback(target_compression=3, end_epoch=0, lr_scaling="none", verbose=0)
    history = fit(model, cb, epochs=4, callbacks=[lr_zero_from_2, keep_weights, checkpoint], validation_data=(xv, yv))
    assert not np.array_equal(weights[0], weights[1])  # the narrow network trained in epoch 1...
    np.testing.assert_array_equal(weights[1], weights[2])  # ...and a learning rate set to 0 stopped it
    np.testing.assert_array_equal(weights[2], weights[3])
    assert history.history["val_loss"][-1] == pytest.approx(model.evaluate(xv, yv, verbose=0)[0], rel=1e-5)
    saved = compiled(mlp())
    saved.load_weights(str(tmp_path / "e2.weights.h5"))
    np.testing.assert_array_equal(np.asarray(saved.layers[0].kernel), weights[1])


def test_a_learning_rate_set_before_each_batch_reaches_the_narrow_network():
    """Callbacks set the learning rate on the user's model's optimizer, per epoch or per batch
    (FlopsBudget's decay, a warm-up); the narrow network that trains must follow every change."""
    model = compiled(mlp(), optimizer=keras.optimizers.Adam(0.01))
    kernels = {}

    class ZeroFromSecondBatch(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if self.epoch >= 1:
                self.model.optimizer.learning_rate = 0.0 if batch >= 1 else 0.01

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if self.epoch >= 1 and cb.trainer.compact is not None:
                kernels.setdefault(self.epoch, []).append(np.asarray(first_kernel(cb.trainer.compact)).copy())

    cb = DynHPCallback(target_compression=3, end_epoch=0, lr_scaling="none", verbose=0)
    fit(model, cb, epochs=3, callbacks=[ZeroFromSecondBatch()])
    for epoch in (1, 2):  # narrow from epoch 1 on: only the first step of each epoch moves the weights
        steps = kernels[epoch]
        assert len(steps) > 2
        for later in steps[1:]:
            np.testing.assert_array_equal(later, steps[0])
    assert not np.array_equal(kernels[1][0], kernels[2][0])


def test_early_stopping_ends_fit_with_synced_weights():
    model = compiled(mlp())
    stop = keras.callbacks.EarlyStopping(monitor="loss", patience=0, min_delta=10.0)
    cb = DynHPCallback(target_compression=3, end_epoch=0, verbose=0)
    history = fit(model, cb, epochs=5, callbacks=[stop])
    assert len(history.history["loss"]) < 5
    x = data_for(model, n=16, seed=4)[0]
    np.testing.assert_allclose(np.asarray(cb.compact_model()(x)), np.asarray(model(x)), rtol=1e-5, atol=1e-5)


def test_replaced_networks_and_the_full_width_optimizer_give_their_buffers_back():
    # TensorFlow keeps traced train functions (and the buffers their variables own) alive after
    # a model is gone, so each shrink empties what it replaces; the user's model keeps training.
    model = mlp()
    original = keras.optimizers.Adam(1e-3)
    model.compile(original, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    narrow = []
    probe = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: narrow.append(cb.trainer.compact))
    cb = DynHPCallback(target_compression=4, end_epoch=1, verbose=0)
    fit(model, cb, epochs=3, callbacks=[probe])
    first, last = narrow[0], narrow[-1]
    assert first is not last  # two events: the first narrow network was replaced
    assert all(np.asarray(v).size == 0 for v in list(first.variables) + list(first.optimizer.variables))
    assert model.optimizer is not original
    assert all(np.asarray(v).size == 0 for v in original.variables)
    slots = optimizer_slots(model.optimizer, first_kernel(model))
    assert len(slots) == 2 and all(np.any(np.asarray(s) != 0) for s in slots)
    x = data_for(model, n=32, seed=3)[0]
    np.testing.assert_allclose(np.asarray(cb.compact_model()(x)), np.asarray(model(x)), rtol=1e-5, atol=1e-5)
