"""After DynHP, BatchNorm layers normalise the pruned network's activations, not the dense one's."""
import numpy as np

from dynhp_tf import DynHPCallback
from dynhp_tf._keras import keras
from tests.models import compiled, data_for

L = keras.layers


def residual_bn(size=8, classes=3):
    """Stem and block joined by Add, each with BatchNorm: one pruning group across the Add."""
    inputs = keras.Input((size, size, 1))
    x = L.ReLU()(L.BatchNormalization()(L.Conv2D(8, 3, padding="same", use_bias=False)(inputs)))
    y = L.ReLU()(L.BatchNormalization()(L.Conv2D(8, 3, padding="same", use_bias=False)(x)))
    y = L.BatchNormalization()(L.Conv2D(8, 3, padding="same", use_bias=False)(y))
    x = L.ReLU()(L.Add()([x, y]))
    x = L.GlobalAveragePooling2D()(L.Conv2D(12, 3, activation="relu")(x))
    return keras.Model(inputs, L.Dense(classes)(x))


def test_inference_after_a_pruning_event_matches_training_mode():
    # Keras's default momentum (0.99) leaves the moving statistics near their initial values
    # after a few steps: stale by construction unless DynHP re-estimates them at the event.
    model = compiled(residual_bn())
    x, y = data_for(model)
    cb = DynHPCallback(target_compression=3, end_epoch=1, verbose=0, batch_size=16,
                       max_batch_size=64)
    model.fit(cb.batches(x, y, batch_size=16), epochs=2, callbacks=[cb], verbose=0)
    assert cb.history[-1]["dynhp/compression"] >= 3
    # The event's sample covers all 256 samples, so the statistics are those of one batch of all.
    for network in (model, cb.compact_model()):
        np.testing.assert_allclose(np.asarray(network(x, training=False)), np.asarray(network(x, training=True)),
                                   rtol=1e-3, atol=1e-3)
