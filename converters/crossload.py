"""Loading a model file saved by the other Keras (tf_keras vs Keras 3).

Keras 3 reads most `.h5` files that tf_keras wrote, but refuses some layer configs that
tf_keras writes with extra keys (DepthwiseConv2D's `groups`, "damaged file" before).
`KERAS3_DROPPED_KEYS` lists them; such a file is loaded from a patched temporary copy.
Other combinations (tf_keras reading Keras 3 files: input shapes, dtype policies and
functional graphs are written differently) are refused with the framework to use.

Example:
    >>> saved_by("model.h5")
    ('tf_keras', '2.21.0')
"""

from __future__ import annotations

import json
import pathlib
import shutil
import tempfile
import zipfile

from dynhp_tf._keras import LEGACY, keras

RUNNING = "tf_keras" if LEGACY else "Keras 3"
# Layer config keys tf_keras writes and Keras 3 refuses, when they hold their default.
KERAS3_DROPPED_KEYS = {"DepthwiseConv2D": {"groups": 1}}


def saved_by(path) -> tuple[str, str] | None:
    """("tf_keras" or "Keras 3", version) that saved `path`, or None if not recorded."""
    import h5py

    path = pathlib.Path(path)
    version = None
    try:
        if path.suffix.lower() == ".keras":
            with zipfile.ZipFile(path) as archive:
                version = json.loads(archive.read("metadata.json")).get("keras_version")
        else:
            with h5py.File(path, "r") as f:
                version = f.attrs.get("keras_version")
    except Exception:  # unreadable metadata: the caller reports the load error itself
        return None
    if isinstance(version, bytes):
        version = version.decode()
    if not version:
        return None
    return ("Keras 3" if str(version).split(".")[0] == "3" else "tf_keras"), str(version)


def _patch_layers(config, drops: dict) -> bool:
    """Remove `drops` keys (at their default value) from every layer config, in place."""
    changed = False
    if isinstance(config, dict):
        defaults = drops.get(config.get("class_name"), {})
        inner = config.get("config")
        if isinstance(inner, dict):
            for key, default in defaults.items():
                if key in inner and inner[key] == default:
                    del inner[key]
                    changed = True
        for value in config.values():
            changed |= _patch_layers(value, drops)
    elif isinstance(config, list):
        for value in config:
            changed |= _patch_layers(value, drops)
    return changed


def load_patched_h5(path):
    """Load a tf_keras `.h5` under Keras 3 from a copy whose layer configs drop the keys
    in `KERAS3_DROPPED_KEYS`; None when nothing needed patching (or not Keras 3)."""
    import h5py

    if LEGACY:
        return None
    with h5py.File(path, "r") as f:
        config = json.loads(f.attrs["model_config"])
    if not _patch_layers(config, KERAS3_DROPPED_KEYS):
        return None
    with tempfile.TemporaryDirectory(prefix="dynhp-load-") as tmp:
        copy = pathlib.Path(tmp) / "model.h5"
        shutil.copyfile(path, copy)
        with h5py.File(copy, "r+") as f:
            f.attrs["model_config"] = json.dumps(config)
        return keras.models.load_model(copy, compile=False)


def framework_hint(saver: str) -> str:
    """How to run dynhp-export under the Keras that saved a file."""
    if saver == "tf_keras":
        return "run dynhp-export with TF_USE_LEGACY_KERAS=1 (tf_keras)"
    return "run dynhp-export without TF_USE_LEGACY_KERAS (Keras 3)"
