"""DynHPCallback: Dynamic Hard Pruning of whole neurons during `model.fit`."""
from __future__ import annotations

import math
import warnings

import numpy as np

from dynhp_tf._keras import keras
from dynhp_tf.arguments import integer, number
from dynhp_tf.batching import BatchStream
from dynhp_tf.batchnorm import recalibrate_batchnorm
from dynhp_tf.board_profiles import model_limits, read_profile
from dynhp_tf.budget import HEADS, SAFETY, device_plan, largest_fitting
from dynhp_tf.calibration import balanced_indices, save_calibration
from dynhp_tf.compact import kept_neurons, narrow_model
from dynhp_tf.groups import pruning_groups
from dynhp_tf.halo import Halo
from dynhp_tf.importance import CRITERIA
from dynhp_tf.int8_finetune import narrow_logit_range
from dynhp_tf.logit_level import logits_function
from dynhp_tf.masks import NeuronMasks
from dynhp_tf.memory import memory_for, reuse_slack, slots_per_weight
from dynhp_tf.schedule import PruningSchedule
from dynhp_tf.selection import COSTS, FLOOR_NEURONS, floors, select, smallest_params
from dynhp_tf.stepping import StepDriver
from dynhp_tf.trainer import CompactTrainer, current_learning_rate, has_schedule, release_memory

# Under device limits the layer floor's neurons are kept when they cost at most this share of the
# parameters the limits allow without them (`DynHPCallback._device_final`).
FLOOR_COST = 0.01
# How the learning rate follows the batch size: factor as a function of new/old batch.
LR_SCALING = {"none": lambda r: 1.0, "linear": lambda r: r, "sqrt": math.sqrt}
# When the batch grows: after every pruning event, or once after the schedule's last one.
BATCH_GROWTH = ("events", "after_schedule")
# Training samples that re-estimate BatchNorm statistics after each pruning event.
BATCHNORM_SAMPLES = 2048
LOG_KEYS = ("dynhp/params", "dynhp/compression", "dynhp/batch_size", "dynhp/train_memory_bytes",
            "dynhp/flatbuffer_bytes", "dynhp/arena_bytes", "dynhp/macs")


def _positive(name, value, minimum=1):
    return number(name, value, minimum)


class DynHPCallback(keras.callbacks.Callback):
    """Hard-prunes whole neurons toward a compression target and grows the batch size.

    At the end of each scheduled epoch the least important neurons (Dense units, Conv filters,
    with everything coupled to them: see `dynhp_tf.pruning_groups`) are removed for good:
    their weights become exactly zero and a variable constraint keeps them zero inside the
    compiled train step. The memory this frees buys a larger batch: after each pruning event
    the batch becomes the largest that fits `memory_budget`, capped by `max_batch_size`, never
    smaller than before. Feed fit with `cb.batches(x, y)` so the batch can grow within one fit.

    Args:
        target_compression: dense params / remaining params at the end of the schedule (> 1).
            Optional when a device budget is given; with both, the stronger one wins.
        target_board: a board profile name (`dynhp-export --list-boards`): prune until the int8
            model fits it as the exporter's fit check counts it (flash and arena, with the
            board's margins), by the estimates of `dynhp_tf.budget`.
        flatbuffer_bytes, arena_bytes, macs: explicit limits on the int8 flatbuffer, the TFLM
            arena (as the host measures it, without a board margin) and the MACs per inference.
        head: the classifier head those limits are estimated for, as `dynhp-export --head` will
            make it: "int8" (default) or "float" (a Dense+softmax last layer in float32); the
            int8 fine-tuning (`int8_finetune_epochs`) then leaves that layer and the logits in float.
        start_epoch, end_epoch, frequency, schedule: see `PruningSchedule` (epochs are 0-based;
            epochs after `end_epoch` fine-tune).
        criterion: neuron importance, one of "l2_product" (default), "l1_incoming", "taylor",
            "halo" (also puts the neuron-level HALO penalty on the loss during training and
            ranks neurons by its scales and weights; see `dynhp_tf.halo`).
        halo: settings of that penalty, a dict of `Halo` arguments (xi, psi, scale_rule, min_scale).
        min_neurons: the fewest neurons any prunable layer keeps.
        width_multiple: kept widths are multiples of this (4 or 8 suit CMSIS-NN / ESP-NN).
        batch_size: the initial batch size (`batches()` may override it).
        max_batch_size: the batch never grows beyond this (default 256: on LeNet-300-100 at 10x,
            growing to 1024 cost 2.3 accuracy points in 10 epochs, 256 with sqrt scaling 0.3).
        memory_budget: training-memory bytes the batch may fill; default the dense network's
            training memory at the initial batch size.
        lr_scaling: "sqrt" (default), "linear" or "none": how the learning rate follows batch
            growth (sqrt keeps the gradient noise scale for Adam-like optimizers).
        taylor_samples: samples used per event by the "taylor" criterion.
        calibration_file: if set, `calibration_samples` class-balanced training samples and the
            training inputs' range are saved there at the end of training (for `dynhp-export`, which holds some of
            them out to judge int8 agreement; see `dynhp_tf.calibration.sidecar_path`).
        seed: seeds sampling for the taylor criterion and the calibration file.
        verbose: 1 prints pruning events and a width table at the end; 0 is silent.
        ranking_cost: None (default) ranks neurons by score; "params" or "macs" by score per
            parameter or MAC saved, so cheap early conv filters are not collapsed first
            (`dynhp_tf.selection.select`).
        int8_finetune_epochs: 0 (default) or the epochs of a quantization-aware fine-tuning run
            at the end of fit, after the last pruning event, on the data of `cb.batches(x, y)`
            (integer or one-hot labels): `narrow_logit_range(..., weight=0, weight_grid=...)`
            trains with the kernels on the int8 grid of the target board (per-tensor Dense
            unless the board runs per-channel) and leaves them on it, with the hidden Dense/Conv
            outputs and the logits rounded to their int8 grid too, so the int8 model agrees
            better with the float one; removed neurons stay removed. Before it the logits are
            shifted so each sample's top logit is about constant (`dynhp_tf.logit_level`; the
            softmax does not change), which makes their int8 steps finer. Result in `cb.int8_finetune`.
        batch_growth: "after_schedule" (default) keeps `batch_size` while pruning and grows
            once, after the schedule's last event, so only the fine-tuning epochs train at the
            larger batch; "events" grows it after every pruning event (0.4 int8 points lower
            at 10x on LeNet-300-100 and the CNN, equal epochs; docs/benchmarks.md, payoff).
        layer_floor: a share in [0, 1] (default 0.7; 0 turns it off): at each event no layer is
            pruned below that share of the width uniform pruning to the event's size would leave
            it, nor below 8 neurons (or its width), as far as the event's size allows
            (`dynhp_tf.selection.layer_floors`), so a small early conv layer cannot collapse.
            Under device limits (`target_board`, `arena_bytes`, ...) the 8 neurons are kept
            only where they cost at most FLOOR_COST (1%) of the parameters the limits allow
            without them: kept conv maps cost arena, which the floor cannot see.
            The LeNet-5-style CNN at 10x kept 1 of 6 conv1 filters in 2 of 3 seeds without it,
            2 with the share alone (+1.4 int8 points), 6 with both (+0.8 more; LeNet-300-100
            unchanged; docs/benchmarks.md, payoff).

    Example:
        >>> cb = DynHPCallback(target_compression=10)
        >>> model.fit(cb.batches(x_train, y_train, batch_size=32), epochs=30,
        ...           validation_data=(x_val, y_val), callbacks=[cb])
    """

    def __init__(self, target_compression=None, start_epoch=0, end_epoch=None, frequency=1, schedule="cubic",
                 criterion="l2_product", min_neurons=1, width_multiple=1, batch_size=32, max_batch_size=256,
                 memory_budget=None, lr_scaling="sqrt", taylor_samples=512, calibration_file=None,
                 calibration_samples=1000, seed=0, verbose=1, halo=None, target_board=None,
                 flatbuffer_bytes=None, arena_bytes=None, macs=None, ranking_cost=None,
                 int8_finetune_epochs=0, batch_growth="after_schedule", layer_floor=0.7, head="int8"):
        super().__init__()
        explicit = {"flatbuffer_bytes": flatbuffer_bytes, "arena_bytes": arena_bytes, "macs": macs}
        if target_compression is None and target_board is None and all(v is None for v in explicit.values()):
            raise ValueError("target_compression: expected a number > 1 (dense/remaining params), or a device "
                             "budget (target_board=, flatbuffer_bytes=, arena_bytes=, macs=)")
        if target_compression is not None:
            number("target_compression", target_compression, 1, strict=True,
                   meaning=" (dense/remaining params)")
        for name, value in explicit.items():
            if value is not None:
                _positive(name, value)
        self.limits, self.per_channel_dense = {}, False
        if target_board is not None:
            try:
                profile = read_profile(target_board)
            except KeyError as e:
                raise ValueError(f"target_board: {e.args[0]}") from None
            self.limits = model_limits(profile)
            self.per_channel_dense = bool(profile.get("tflm", {}).get("per_channel_dense", False))
        for name, value in explicit.items():
            if value is not None:
                self.limits[name] = min(int(value), self.limits.get(name, int(value)))
        self.target_board, self.explicit_limits = target_board, explicit
        if head not in HEADS:
            raise ValueError(f"head: expected one of {list(HEADS)}, got {head!r}")
        self.head = head
        if criterion not in CRITERIA:
            raise ValueError(f"criterion: expected one of {sorted(CRITERIA)}, got {criterion!r}")
        if lr_scaling not in LR_SCALING:
            raise ValueError(f"lr_scaling: expected one of {sorted(LR_SCALING)}, got {lr_scaling!r}")
        min_neurons, width_multiple, batch_size, max_batch_size, taylor_samples, calibration_samples = (
            integer(name, value) for name, value in (
                ("min_neurons", min_neurons), ("width_multiple", width_multiple), ("batch_size", batch_size),
                ("max_batch_size", max_batch_size), ("taylor_samples", taylor_samples),
                ("calibration_samples", calibration_samples)))
        if max_batch_size < batch_size:
            raise ValueError(f"max_batch_size: expected >= batch_size ({batch_size}), got {max_batch_size}")
        if memory_budget is not None:
            memory_budget = int(_positive("memory_budget", memory_budget))
        if ranking_cost not in (None, *COSTS):
            raise ValueError(f"ranking_cost: expected one of {sorted(COSTS)} or None, got {ranking_cost!r}")
        self.ranking_cost = ranking_cost
        self.int8_finetune_epochs = integer("int8_finetune_epochs", int8_finetune_epochs, 0)
        if batch_growth not in BATCH_GROWTH:
            raise ValueError(f"batch_growth: expected one of {list(BATCH_GROWTH)}, got {batch_growth!r}")
        self.batch_growth = batch_growth
        self.layer_floor = number("layer_floor", layer_floor, 0)
        if self.layer_floor > 1:  # above 1 the floors together could exceed the target
            raise ValueError(f"layer_floor: expected a number in [0, 1], got {layer_floor!r}")
        self.int8_finetune = None
        self.schedule = PruningSchedule(start_epoch, end_epoch, frequency, schedule)
        self.target_compression = None if target_compression is None else float(target_compression)
        self.criterion, self.min_neurons, self.width_multiple = criterion, min_neurons, width_multiple
        self.batch_size, self.max_batch_size, self.memory_budget = batch_size, max_batch_size, memory_budget
        self.lr_scaling, self.taylor_samples = lr_scaling, taylor_samples
        self.calibration_file, self.calibration_samples = calibration_file, calibration_samples
        self.seed, self.verbose = seed, verbose
        self.halo_options = dict(halo or {})
        unknown = set(self.halo_options) - {"xi", "psi", "scale_rule", "min_scale"}
        if unknown:
            raise ValueError(f"halo: expected keys among xi, psi, scale_rule, min_scale, got {sorted(unknown)}")
        Halo(level="neuron", **self.halo_options)  # refuses bad values now
        self.halo: Halo | None = None
        self.stream: BatchStream | None = None
        self.history: list[dict] = []

    def get_config(self) -> dict:
        return {
            "target_compression": self.target_compression,
            "start_epoch": self.schedule.start_epoch,
            "end_epoch": self.schedule.end_epoch,
            "frequency": self.schedule.frequency,
            "schedule": self.schedule.curve,
            "criterion": self.criterion,
            "min_neurons": self.min_neurons,
            "width_multiple": self.width_multiple,
            "batch_size": self.batch_size,
            "max_batch_size": self.max_batch_size,
            "memory_budget": self.memory_budget,
            "lr_scaling": self.lr_scaling,
            "taylor_samples": self.taylor_samples,
            "calibration_file": self.calibration_file,
            "calibration_samples": self.calibration_samples,
            "seed": self.seed,
            "verbose": self.verbose,
            "halo": self.halo_options,
            "target_board": self.target_board,
            "ranking_cost": self.ranking_cost,
            "int8_finetune_epochs": self.int8_finetune_epochs,
            "batch_growth": self.batch_growth,
            "layer_floor": self.layer_floor,
            "head": self.head,
            **self.explicit_limits,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def batches(self, x, y, batch_size=None, sample_weight=None, shuffle=True, seed=None):
        """A `tf.data.Dataset` for `model.fit` whose batch size grows as the network shrinks.

        Every sample is seen exactly once per epoch. When the batch has grown, Keras still
        runs the step count of the first epoch; the surplus steps are no-ops (no data, no
        weight update), so the progress bar finishes early. `seed` sets the shuffling order;
        without it the order follows NumPy's global generator, so `keras.utils.set_random_seed`
        makes it reproducible, as with Keras's own shuffling.
        """
        self.stream = BatchStream(x, y, batch_size or self.batch_size, sample_weight, shuffle, seed)
        return self.stream.dataset()

    # --- training hooks ---------------------------------------------------------------

    def on_train_begin(self, logs=None):
        model, epochs = self.model, self.params.get("epochs", 1)
        self.schedule.check(epochs)
        self.graph = graph = pruning_groups(model)
        self.dense_params = graph.params()
        floor_params = smallest_params(graph, self.min_neurons, self.width_multiple)
        try:
            self.plan = device_plan(model, graph, head=self.head)
        except ValueError as e:  # only a float head can be refused here
            raise ValueError(f"head='{self.head}': {e}") from None
        if self.limits:
            smallest = self.plan.estimate(floors(graph, self.min_neurons, self.width_multiple), self.per_channel_dense)
            over = [f"{k} {self.limits[k]:,}" for k in self.limits
                    if getattr(smallest, k) > self.limits[k] * (1 - SAFETY[k])]
            if over:
                raise ValueError(
                    f"{over[0].split()[0]}: the limit{'s' if len(over) > 1 else ''} {', '.join(over)} "
                    f"{'are' if len(over) > 1 else 'is'} unreachable: with min_neurons={self.min_neurons} and "
                    f"width_multiple={self.width_multiple} the smallest network has an estimated "
                    f"{smallest.flatbuffer_bytes:,} flatbuffer bytes, {smallest.arena_bytes:,} arena bytes and "
                    f"{smallest.macs:,} MACs{' (' + self.target_board + ')' if self.target_board else ''}")
        if self.target_compression is not None and floor_params > self.dense_params / self.target_compression:
            raise ValueError(
                f"target_compression: {self.target_compression:g} is unreachable: with min_neurons="
                f"{self.min_neurons} and width_multiple={self.width_multiple} the smallest network has "
                f"{floor_params} of {self.dense_params} params (compression "
                f"{self.dense_params / floor_params:.2f})")
        if self.int8_finetune_epochs:
            if self.stream is None:
                raise ValueError("int8_finetune_epochs: the fine-tuning needs training data; feed fit with "
                                 "cb.batches(x, y)")
            logits_function(model)  # refuses a model without logits now, not after training
        if self.criterion == "taylor" and self.stream is None:
            raise ValueError("criterion: 'taylor' needs training data; feed fit with cb.batches(x, y)")
        self._lr_scaling = self.lr_scaling
        if self.lr_scaling != "none" and has_schedule(model.optimizer):
            warnings.warn(f"DynHPCallback: lr_scaling={self.lr_scaling!r} is ignored: the learning rate is a "
                          "schedule, which the callback leaves alone", stacklevel=2)
            self._lr_scaling = "none"

        steps = self.params.get("steps")
        if self.stream is not None and steps is not None and steps != self.stream.max_steps:
            raise ValueError(f"steps_per_epoch: expected it unset with cb.batches() (one pass over the data "
                             f"is {self.stream.max_steps} steps), got {steps}")
        if steps is None:
            raise ValueError("steps_per_epoch: DynHPCallback needs a known number of steps per epoch; give "
                             "steps_per_epoch to fit, or feed it with cb.batches(x, y) or arrays")
        if getattr(model.optimizer, "use_ema", False):
            raise ValueError("use_ema: DynHPCallback does not support optimizers with use_ema=True")
        self.driver = StepDriver(model, steps, step=self._step, on_epoch_steps_done=self._epoch_steps_done,
                                 network=lambda: self.trainer.network)
        keep = kept_neurons(model, graph)  # resume: removed neurons stay removed
        self.masks = NeuronMasks(model, graph)
        self.masks.update(keep)
        self.slots = slots_per_weight(model.optimizer)
        initial_batch = self.stream.initial_batch_size if self.stream else self.batch_size
        self.current_batch = initial_batch
        self.budget = self.memory_budget or memory_for(graph, graph.sizes, initial_batch, self.slots).total

        if self.criterion == "halo":
            self.halo = Halo(level="neuron", **self.halo_options).attach(model, graph)
            model.make_train_function(force=True)  # a step traced before would leave the penalty out
        self.driver.install()
        self.driver.on_release(self._restore)
        # The first epoch trains the full-width model (under the masks) even when a resumed model
        # has removed neurons: Keras builds its metrics in that model's first step.
        self.trainer = CompactTrainer(model, graph)
        if not self.trainer.physical:  # the masked model itself trains: constrain it from the start
            self.masks.attach()
            warnings.warn(f"DynHPCallback: with {model.distribute_strategy.num_replicas_in_sync} replicas the "
                          "neurons are pruned by masks, not removed physically: train steps keep their "
                          "full-width cost", stacklevel=2)
        self._own_step_constrained = self.masks.attached  # attached before the step is first traced
        self._zero_after_step = False
        if self.stream is None:
            warnings.warn("DynHPCallback: fit was given arrays, not cb.batches(x, y): neurons are pruned, "
                          "but batch growth is off", stacklevel=2)
        else:
            self.stream.batch_size = initial_batch
            if self.batch_growth == "events":
                self._grow_batch()

    def _step(self, iterator):
        if self.trainer.compact is not None:
            logs = self.trainer.step(iterator)
        else:
            logs = self.driver.own_step(iterator)
            if self._zero_after_step:
                self.masks.zero_in_place()
        if self.halo is not None:
            self.halo.update_scales()
        return logs

    def _epoch_steps_done(self):
        self.trainer.sync()

    def _shrink(self, keep):
        if self.trainer.compact is None and self._first_copy_costs_more():
            # The masked model trains on. Its step was traced before the constraint that keeps
            # removed neurons at zero was attached (at this event): trace it again with the
            # constraint, or, where the constraint's product (one more weight-sized buffer in
            # every step) would be large, set the removed entries back to zero in place after
            # each step.
            if self.masks.attached and not self._own_step_constrained:
                if self.masks.constraint_is_cheap():
                    self.driver.remake_own_step()
                    self._own_step_constrained = True
                else:
                    self._zero_after_step = True
            return
        previous = self.trainer.keep
        if self.trainer.shrink(keep):
            if self.halo is not None:  # the penalty moves to the narrow network, scales sliced
                relative = [new[old] for new, old in zip(keep, previous)]
                self.halo.attach(self.trainer.network, self.trainer.network_graph, self.halo.narrowed_state(relative))
            self.driver.release_own_step()
            release_memory()

    def _first_copy_costs_more(self) -> bool:
        """Whether a first narrow copy beside the full-width weights would take more memory than
        the masked model, counting the freed chunks a best-fit allocator hands it whole while a
        narrow buffer is more than half its full-width one (`reuse_slack`)."""
        copy = self._memory(self.current_batch, narrow=True).total + reuse_slack(self.graph, self._kept(), self.slots)
        return copy > self._memory(self.current_batch, narrow=False).total

    def on_epoch_begin(self, epoch, logs=None):
        self.driver.begin_epoch(self.stream.steps if self.stream else math.inf)
        self.trainer.begin_epoch()

    def on_epoch_end(self, epoch, logs=None):
        self.trainer.sync()  # when fit stopped the epoch early
        progress = self.schedule.progress(epoch, self.params.get("epochs", 1))
        if progress is not None:
            self._prune(progress)
        self._shrink(self.masks.keep)
        if progress is not None and self.stream is not None:
            self._recalibrate_batchnorm()
            if self.batch_growth == "events" or progress == 1.0:  # 1.0: the schedule's last event
                self._grow_batch()
        record = self._record(epoch)
        self.history.append(record)
        if logs is not None:
            logs.update({key: record[key] for key in LOG_KEYS})

    def _restore(self):
        """The user's model as fit leaves it, also when fit raised (`StepDriver.on_release`)."""
        self.trainer.finish()
        if self.halo is not None:
            self.halo.detach()  # the penalty is part of DynHP training only

    def on_train_end(self, logs=None):
        self.driver.uninstall()  # runs `_restore`
        if self.int8_finetune_epochs:
            self._finetune_int8()
        if self.calibration_file:
            if self.stream is None:
                warnings.warn("DynHPCallback: calibration_file needs cb.batches(x, y); not written", stacklevel=2)
            else:
                x, y = self.stream.arrays[:2]
                index = balanced_indices(y, self.calibration_samples, self.seed)
                save_calibration(self.calibration_file, x[index], training_inputs=x)
        if self.verbose:
            print(self.width_table())

    def _finetune_int8(self) -> None:
        # On the narrow network when there is one (cheaper), then into the user's model.
        x, y = self.stream.arrays[:2]
        y = np.asarray(y)
        labels = y.argmax(axis=-1) if y.ndim == 2 and y.shape[1] > 1 else y.reshape(len(y)).astype(np.int64)
        network = self.trainer.network
        # Weights on the board's int8 grid, no logit penalty: in the benchmark the penalty cost
        # float accuracy for no more agreement (docs/benchmarks.md, section int8_fidelity).
        # Activations on their grid too: +0.27 points on the demo, neutral on the benchmark.
        # The top logit levelled first: +0.1 to +0.3 points on the demo (docs/benchmarks.md).
        grid = "per-channel" if self.per_channel_dense else "per-tensor"
        self.int8_finetune = narrow_logit_range(network, x, labels, epochs=self.int8_finetune_epochs, seed=self.seed,
                                                weight=0.0, weight_grid=grid, activation_grid=True,
                                                level_logits=self.head == "int8", float_head=self.head == "float")
        self.trainer.write_weights()
        if self.verbose:
            low, high = self.int8_finetune["range_after"]
            print(f"DynHP: int8 fine-tuning ({self.int8_finetune_epochs} epochs): logit range "
                  f"{self.int8_finetune['range_before'][0]:.1f}..{self.int8_finetune['range_before'][1]:.1f} "
                  f"-> {low:.1f}..{high:.1f}")

    def compact_model(self):
        """The physically narrow network with the trained weights (a copy when none was trained)."""
        if self.trainer.compact is not None:
            return self.trainer.compact
        return narrow_model(self.model, self.graph, self.masks.keep)

    # --- pruning and batch growth ------------------------------------------------------

    def _kept(self) -> list[int]:
        return [int(k.sum()) for k in self.masks.keep]

    def _prune(self, progress: float) -> None:
        """Prunes toward the final size at `progress` of the schedule.

        The final size is the stronger of `target_compression` and the largest network whose
        estimates meet every device limit, found with this event's scores (recomputed at each
        event, as the widths and scores change). The last event prunes exactly to it, so the
        limits hold at the end by construction.
        """
        if self.target_compression is None and not self.limits:
            return
        scores = self._scores()
        final = self.dense_params / self.target_compression if self.target_compression else self.dense_params
        final, neurons = self._device_final(scores, final) if self.limits else (final, FLOOR_NEURONS)
        target = self.dense_params - (self.dense_params - final) * progress
        if self.graph.params(self._kept()) > target:
            self.masks.update(select(self.graph, self.masks.keep, scores, target, self.min_neurons,
                                     self.width_multiple, cost=self.ranking_cost, layer_floor=self.layer_floor,
                                     floor_neurons=neurons))

    def _device_final(self, scores, final: float) -> tuple[float, int]:
        """The final size under the device limits, and the layer floor's neurons to prune with.

        The floor's neurons (`dynhp_tf.selection.layer_floors`) are blind to the arena: a CNN's
        conv1 kept at 6 filters keeps its 6 maps, so under a tight arena limit the search shrank
        everything else instead (4,942 parameters under 8,000 arena bytes, 40,393 without the
        neuron floor). So they are kept only where they cost at most FLOOR_COST of the size the
        limits (or the compression target) allow without them.
        """
        sizes = {}
        for neurons in (FLOOR_NEURONS, 1):
            found = largest_fitting(self.plan, self.masks.keep, scores, self.limits, self.per_channel_dense,
                                    self.min_neurons, self.width_multiple, self.layer_floor, neurons)
            # None cannot happen after on_train_begin's check, unless min_neurons changed since.
            fitting = smallest_params(self.graph, self.min_neurons, self.width_multiple) if found is None else found[0]
            sizes[neurons] = min(final, fitting)
        neurons = FLOOR_NEURONS if sizes[FLOOR_NEURONS] >= (1 - FLOOR_COST) * sizes[1] else 1
        return sizes[neurons], neurons

    def _scores(self) -> list[np.ndarray]:
        data = None
        if self.criterion == "taylor":
            x, y = self.stream.sample(self.taylor_samples, self.seed + len(self.history))[:2]
            step = max(1, self.current_batch)
            data = [(x[i:i + step], y[i:i + step]) for i in range(0, len(x), step)]
        network = self.trainer.network
        narrow_scores = CRITERIA[self.criterion](network, self.trainer.network_graph, data)
        scores = []
        for keep, narrow in zip(self.trainer.keep, narrow_scores):
            full = np.zeros(len(keep))
            full[keep] = narrow
            scores.append(full)
        return scores

    def _recalibrate_batchnorm(self) -> None:
        """BatchNorm statistics of the pruned network (`dynhp_tf.batchnorm`), in both models."""
        x = self.stream.sample(BATCHNORM_SAMPLES, self.seed + len(self.history))[0]
        if recalibrate_batchnorm(self.trainer.network, x):
            self.trainer.write_weights()

    def _memory(self, batch: int, narrow: bool | None = None):
        """Training memory at `batch`: of the narrow network beside the full-width weights, or,
        while the masked full-width model itself trains, of the dense network."""
        narrow = self.trainer.compact is not None if narrow is None else narrow
        kept = self._kept() if narrow else self.graph.sizes
        return memory_for(self.graph, kept, batch, self.slots, narrow_copy=narrow)

    def _grow_batch(self) -> None:
        fixed = self._memory(0).total
        per_sample = self._memory(1).total - fixed
        fits = int((self.budget - fixed) // per_sample) if per_sample else self.max_batch_size
        new = max(self.current_batch, min(self.max_batch_size, fits))
        if new != self.current_batch:
            factor = LR_SCALING[self._lr_scaling](new / self.current_batch)
            if factor != 1.0:
                optimizer = self.model.optimizer
                optimizer.learning_rate = current_learning_rate(optimizer) * factor
            self.current_batch = self.stream.batch_size = new

    def _record(self, epoch: int) -> dict:
        kept = self._kept()
        params = self.graph.params(kept)
        memory = self._memory(self.current_batch)
        device = self.plan.estimate(kept, self.per_channel_dense)
        return {
            "epoch": epoch,
            "dynhp/params": params,
            "dynhp/compression": self.dense_params / params,
            "dynhp/batch_size": self.current_batch,
            "dynhp/train_memory_bytes": memory.total,
            "dynhp/flatbuffer_bytes": device.flatbuffer_bytes,
            "dynhp/arena_bytes": device.arena_bytes,
            "dynhp/macs": device.macs,
            "learning_rate": current_learning_rate(self.model.optimizer),
            "widths": self.widths(),
        }

    def widths(self) -> dict[str, tuple[int, int]]:
        """Per prunable group (named by its first layer): (dense width, kept width)."""
        return {g.name: (g.size, int(k.sum())) for g, k in zip(self.graph.groups, self.masks.keep)}

    def width_table(self) -> str:
        rows = [f"{'layer':<24}{'dense':>8}{'kept':>8}"]
        rows += [f"{name:<24}{dense:>8}{kept:>8}" for name, (dense, kept) in self.widths().items()]
        params = self.graph.params(self._kept())
        rows.append(f"params {params} of {self.dense_params} (compression {self.dense_params / params:.2f}x), "
                    f"batch size {self.current_batch}")
        return "DynHP widths\n" + "\n".join(rows)
