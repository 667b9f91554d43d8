"""dynhp-tf: Dynamic Hard Pruning (DynHP) of whole neurons for Keras, training side."""
from dynhp_tf.batching import BatchStream
from dynhp_tf.callback import DynHPCallback
from dynhp_tf.compact import narrow_model, removable_neurons
from dynhp_tf.groups import PruningGraph, PruningGroup, UnsupportedLayerError, pruning_groups
from dynhp_tf.layers import LayerRule, register_layer
from dynhp_tf.memory import TrainingMemory, training_memory
from dynhp_tf.schedule import PruningSchedule

__all__ = ["BatchStream", "DynHPCallback", "LayerRule", "PruningGraph", "PruningGroup", "PruningSchedule",
           "TrainingMemory", "UnsupportedLayerError", "narrow_model", "pruning_groups", "register_layer",
           "removable_neurons", "training_memory"]
__version__ = "0.1.0"
