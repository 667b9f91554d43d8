"""dynhp-tf: Dynamic Hard Pruning (DynHP) of whole neurons for Keras, training side."""
from dynhp_tf.batching import BatchStream
from dynhp_tf.callback import DynHPCallback
from dynhp_tf.compact import narrow_model, removable_neurons
from dynhp_tf.error_maps import ErrorMapConv2D, error_map_pruning, strip_error_map_pruning
from dynhp_tf.flops import TrainingFlops, per_sample_flops
from dynhp_tf.groups import PruningGraph, PruningGroup, UnsupportedLayerError, pruning_groups
from dynhp_tf.instance_filter import InstanceFilter, ThresholdRule
from dynhp_tf.layers import LayerRule, register_layer
from dynhp_tf.memory import TrainingMemory, training_memory
from dynhp_tf.schedule import PruningSchedule

__all__ = ["BatchStream", "DynHPCallback", "LayerRule", "PruningGraph", "PruningGroup", "PruningSchedule",
           "TrainingMemory", "UnsupportedLayerError", "narrow_model", "pruning_groups", "register_layer",
           "removable_neurons", "training_memory"]
__all__ += ["ErrorMapConv2D", "InstanceFilter", "ThresholdRule", "TrainingFlops", "error_map_pruning",
            "per_sample_flops", "strip_error_map_pruning"]
__version__ = "0.1.0"
