"""A fit that raises mid-way (Keras skips `on_train_end`) leaves no DynHP machinery behind."""
import numpy as np
import pytest

from dynhp_tf import DynHPCallback
from dynhp_tf._keras import keras
from dynhp_tf.instance_filter import InstanceFilter
from tests.models import data_for, mlp


class Boom(Exception):
    pass


class RaiseIn(keras.callbacks.Callback):
    """Raises in epoch 1: after its second batch, or in `on_epoch_end`."""

    def __init__(self, where):
        super().__init__()
        self.where, self.epoch = where, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.where == "batch" and self.epoch == 1 and batch == 1:
            raise Boom()

    def on_epoch_end(self, epoch, logs=None):
        if self.where == "epoch_end" and epoch == 1:
            raise Boom()


class Weights(keras.callbacks.Callback):
    """The model's weights at every `on_epoch_end` and at `on_train_begin`."""

    def on_train_begin(self, logs=None):
        self.start, self.epochs = self.model.get_weights(), []

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append(self.model.get_weights())


def compiled_sgd(model, learning_rate=0.05):
    # Plain SGD has no optimizer state: a fresh compile must train exactly like the model.
    model.compile(optimizer=keras.optimizers.SGD(learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def removed_are_zero(weights, keep):
    """Hidden Dense kernels/biases (mlp: layers 0 and 1) are exactly zero for removed neurons."""
    for i, k in enumerate(keep):
        kernel, bias = weights[2 * i], weights[2 * i + 1]
        assert not kernel[:, ~k].any() and not bias[~k].any()


@pytest.mark.parametrize("where", ["batch", "epoch_end"])
@pytest.mark.parametrize("methods", ["dynhp", "filter", "dynhp+filter"])
def test_a_plain_fit_after_an_interrupted_fit_trains_the_model_like_a_fresh_compile(methods, where):
    model = compiled_sgd(mlp())
    x, y = data_for(model, n=192)
    cb = DynHPCallback(target_compression=4, end_epoch=1, verbose=0) if "dynhp" in methods else None
    filt = InstanceFilter(keep_ratio=0.3) if "filter" in methods else None
    synced = Weights()
    callbacks = [c for c in (cb, filt) if c is not None] + [synced, RaiseIn(where)]
    data = cb.batches(x, y, batch_size=32, shuffle=False) if cb else None
    with pytest.raises(Boom):
        if cb:
            model.fit(data, epochs=3, callbacks=callbacks, verbose=0)
        else:
            model.fit(x, y, batch_size=32, epochs=3, callbacks=callbacks, verbose=0)
    if cb:  # the user's model holds the last synced weights, removed neurons exactly zero
        last = synced.epochs[-1]
        for a, b in zip(model.get_weights(), last):
            np.testing.assert_array_equal(a, b)
        keep = cb.trainer.keep
        assert sum(k.sum() for k in keep) < sum(k.size for k in keep)  # neurons were removed
        removed_are_zero(model.get_weights(), keep)

    start = Weights()
    model.fit(x, y, batch_size=32, epochs=2, shuffle=False, callbacks=[start], verbose=0)
    if cb:  # it starts from the last step that ran, removed neurons still zero
        removed_are_zero(start.start, keep)
    # DynHP's batch growth scaled the learning rate (as after a fit that ends normally).
    fresh = compiled_sgd(keras.models.clone_model(model), learning_rate=float(model.optimizer.learning_rate))
    fresh.set_weights(start.start)
    fresh.fit(x, y, batch_size=32, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(model.get_weights(), fresh.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert "train_step" not in vars(model) and "compute_loss" not in vars(model)


def test_a_new_dynhp_fit_after_an_interrupted_one_prunes_and_trains():
    model = compiled_sgd(mlp())
    x, y = data_for(model, n=192)
    cb = DynHPCallback(target_compression=4, end_epoch=1, verbose=0)
    with pytest.raises(Boom):
        model.fit(cb.batches(x, y, batch_size=32), epochs=3, callbacks=[cb, RaiseIn("batch")], verbose=0)
    again = DynHPCallback(target_compression=4, end_epoch=1, verbose=0)
    history = model.fit(again.batches(x, y, batch_size=32), epochs=2, callbacks=[again], verbose=0).history
    assert len(history["loss"]) == 2 and np.isfinite(history["loss"]).all()
    assert history["dynhp/compression"][-1] >= 3.5
