"""Small models shared by the tests: the layer kinds the pruning groups support."""
import numpy as np

from dynhp_tf._keras import keras

L = keras.layers


def mlp(inputs=20, hidden=(64, 32), classes=3):
    return keras.Sequential([keras.Input((inputs,))] + [L.Dense(h, activation="relu") for h in hidden]
                            + [L.Dense(classes)])


def cnn(size=12, classes=3):
    return keras.Sequential([
        keras.Input((size, size, 1)),
        L.Conv2D(8, 3), L.BatchNormalization(), L.ReLU(), L.MaxPooling2D(),
        L.Conv2D(12, 3, activation="relu"), L.Flatten(), L.Dropout(0.1),
        L.Dense(24, activation="relu"), L.Dense(classes),
    ])


def residual(size=8, classes=3):
    inputs = keras.Input((size, size, 3))
    x = L.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    y = L.Conv2D(8, 3, padding="same", activation="relu")(x)
    y = L.DepthwiseConv2D(3, padding="same")(y)
    x = L.Add()([x, y])
    x = L.Conv2D(12, 1, activation="relu")(x)
    x = L.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, L.Dense(classes)(x))


def compiled(model, optimizer="adam", loss=None, metrics=("accuracy",)):
    model.compile(optimizer=optimizer, loss=loss or keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=list(metrics))
    return model


def data_for(model, n=256, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n,) + tuple(int(d) for d in model.inputs[0].shape[1:])).astype("float32")
    y = (x.reshape(n, -1)[:, :5].sum(axis=1) > 0).astype("int64") + (x.reshape(n, -1)[:, 5] > 1)
    return x, np.minimum(y, classes - 1)


def prune_first_hidden(model, count: int) -> None:
    """Removes the first `count` neurons of a Dense-Dense model's hidden layer as DynHP leaves
    them: their incoming weights, bias and outgoing weights exactly zero."""
    hidden, out = model.layers[-2], model.layers[-1]
    kernel, bias = hidden.get_weights()
    kernel[:, :count], bias[:count] = 0, 0
    hidden.set_weights([kernel, bias])
    out_kernel, out_bias = out.get_weights()
    out_kernel[:count] = 0
    out.set_weights([out_kernel, out_bias])
