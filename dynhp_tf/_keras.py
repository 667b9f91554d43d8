"""The Keras that `tf.keras` means in this process: tf_keras under TF_USE_LEGACY_KERAS=1, else Keras 3."""
import os

LEGACY = os.environ.get("TF_USE_LEGACY_KERAS", "").lower() in ("1", "true", "yes")

if LEGACY:
    import tf_keras as keras  # noqa: F401
else:
    import keras  # noqa: F401
