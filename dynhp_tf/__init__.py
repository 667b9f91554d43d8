"""dynhp-tf: Dynamic Hard Pruning (DynHP) of whole neurons for Keras (the training side),
and its export to microcontrollers (`dynhp_tf.export`; the deploy side is `dynhp_tf.converters`).

The public names load on first use (PEP 562), so tools that only read board profiles or
results (`dynhp-export --list-boards`, `dynhp-monitor`) do not start TensorFlow.
"""
import importlib
import pathlib

# The deploy side (converters/, boards/, firmware/) sits beside this folder in a checkout and
# installs inside it (pyproject.toml's package-dir). Searching the checkout root as well gives
# `dynhp_tf.converters` etc. in a checkout run with PYTHONPATH, as in the wheel.
_CHECKOUT = pathlib.Path(__file__).resolve().parent.parent
if (_CHECKOUT / "pyproject.toml").is_file() and not (pathlib.Path(__file__).parent / "converters").exists():
    __path__.append(str(_CHECKOUT))

_PUBLIC = {
    "dynhp_tf.batching": ["BatchStream"],
    "dynhp_tf.callback": ["DynHPCallback"],
    "dynhp_tf.compact": ["narrow_model", "removable_neurons"],
    # The export API's face (deploy side; loads only when one of these names is used).
    "dynhp_tf.export": ["ExportError", "ExportResult", "export_model"],
    "dynhp_tf.error_maps": ["ErrorMapConv2D", "error_map_pruning", "strip_error_map_pruning"],
    "dynhp_tf.flops": ["TrainingFlops", "per_sample_flops"],
    "dynhp_tf.flops_budget": ["FlopsBudget"],
    "dynhp_tf.groups": ["PruningGraph", "PruningGroup", "UnsupportedLayerError", "pruning_groups"],
    "dynhp_tf.halo": ["Halo"],
    "dynhp_tf.instance_filter": ["InstanceFilter", "ThresholdRule"],
    "dynhp_tf.int8_finetune": ["narrow_logit_range"],
    "dynhp_tf.layers": ["LayerRule", "register_layer"],
    "dynhp_tf.memory": ["TrainingMemory", "training_memory"],
    "dynhp_tf.online": ["OnlineTrainer"],
    "dynhp_tf.schedule": ["PruningSchedule"],
}
_HOME = {name: module for module, names in _PUBLIC.items() for name in names}
__all__ = sorted(_HOME)
__version__ = "0.1.0"


def __getattr__(name):
    if name not in _HOME:
        raise AttributeError(f"module 'dynhp_tf' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOME[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + __all__)
