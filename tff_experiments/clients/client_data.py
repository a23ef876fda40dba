"""Client inputs built inside the TFF runtime from small tasks, so a round ships no pixels.

A round's cohort travels as `ClientTask`s (client id, shuffle seed, step cap, step fraction,
learning rate, held-out seed, update seed) made by the round plan; in a run each client receives its task
and builds its ClientInput in the graph that trains on it (`task_inputs`). The input reads the
client's examples at once (`client_examples`), shuffles with the task's seed (a fresh order
each epoch, as in McMahan et al.), repeats for the local epochs, batches, and caps the steps;
the shuffle runs over example indices and the batches are gathered by them, which gives the
same batches as shuffling the examples themselves. A straggler doing partial work gets a
fraction u in (0, 1) of its full E * ceil(n / B) steps: ceil(u * full), which is uniform on
1..full when u is uniform. The client's dataset size travels beside its batches as a
one-element sequence, and the round's learning rate as a sequence of at most one rate (none:
the client update's own constant), so one compiled computation serves every round of a
learning-rate schedule. The client's update seed (the seed of every random draw applied to its
update on the way to the server: `update_weight`) travels the same way, so a ClientInput always
names its own. With personalization on, a seeded fraction of each client is held out
(`holdout`) and training sees only the rest.
"""

import collections
import dataclasses
from typing import Any, Callable, Optional

import numpy as np
import tensorflow as tf
import tensorflow_federated as tff

from datasets import whole_client_data
from tff_experiments.clients import holdout

# Shuffle buffer: larger than any client of the supported datasets, so shuffles are uniform.
_SHUFFLE_BUFFER = 10_000
# "No cap" in a task's max_steps (Dataset.take(-1) takes everything).
NO_STEP_CAP = -1
# "No learning rate" in a task: the client update's own constant applies.
NO_LEARNING_RATE = -1.0
TASK_TYPE = tff.types.tensorflow_to_type(collections.OrderedDict(
    client_id=tf.TensorSpec([], tf.string), shuffle_seed=tf.TensorSpec([], tf.int64),
    max_steps=tf.TensorSpec([], tf.int64), step_fraction=tf.TensorSpec([], tf.float32),
    learning_rate=tf.TensorSpec([], tf.float32), holdout_seed=tf.TensorSpec([], tf.int64),
    update_seed=tf.TensorSpec([], tf.int64)))


def task(client_id: str, *, shuffle_seed: int, update_seed: int,
         max_steps: Optional[int] = None, step_fraction: float = 1.0,
         learning_rate: Optional[float] = None, holdout_seed: int = 0
         ) -> collections.OrderedDict:
  """One client's task as the dataset computation takes it (update_seed: the client's own,
  from (seed, round, client); max_steps None: uncapped; learning_rate None: the client
  update's constant; holdout_seed: `holdout.client_seed`)."""
  return collections.OrderedDict(
      client_id=client_id, shuffle_seed=np.int64(shuffle_seed),
      max_steps=np.int64(NO_STEP_CAP if max_steps is None else max_steps),
      step_fraction=np.float32(step_fraction),
      learning_rate=np.float32(NO_LEARNING_RATE if learning_rate is None else learning_rate),
      holdout_seed=np.int64(holdout_seed), update_seed=np.int64(update_seed))


def _without_rewrites() -> tf.data.Options:
  """tf.data options for a client's pipelines: no default graph rewrites, no autotuning.

  A client's pipeline is small and built anew for every client and round; tf.data would
  rewrite (e.g. parallelize its map) and autotune it each time, which cost more worker CPU than
  it saved. The elements and their order are the same either way.
  """
  options = tf.data.Options()
  options.experimental_optimization.apply_default_optimizations = False
  options.autotune.enabled = False
  return options


def _learning_rates(rate) -> tf.data.Dataset:
  """The ClientInput's `learning_rate`: `rate` as a one-element sequence, none if unset (< 0).
  (`take`, not `filter`: no function for TF to instantiate for every client.)"""
  rate = tf.cast(rate, tf.float32)
  return tf.data.Dataset.from_tensors(rate).take(tf.where(rate >= 0, tf.constant(1, tf.int64), 0))


def partial_steps(num_examples, *, fraction, epochs: int, batch_size: int):
  """ceil(fraction * E * ceil(n / B)) (at least 1) for a fraction < 1, else -1 (no cap)."""
  full = epochs * ((num_examples + batch_size - 1) // batch_size)
  steps = tf.maximum(tf.cast(tf.math.ceil(fraction * tf.cast(full, tf.float32)), tf.int64), 1)
  return tf.where(fraction < 1.0, steps, tf.constant(NO_STEP_CAP, tf.int64))


def client_input(batches: tf.data.Dataset, *, update_seed: int,
                 dataset_size: Optional[int] = None,
                 learning_rate: Optional[float] = None) -> collections.OrderedDict:
  """A ClientInput from ready batches (tests, TFF-style callers); `update_seed` is the client's
  own (give each client its own, e.g. `core.seeds.derive(seed, purpose=..., round_num=...,
  client=...)`); size defaults to a count, the learning rate to the client update's own
  constant."""
  if dataset_size is None:
    sizes = batches.map(lambda b: tf.shape(b['y'], out_type=tf.int64)[0])
  else:
    sizes = tf.data.Dataset.from_tensors(tf.constant(dataset_size, tf.int64))
  rate = NO_LEARNING_RATE if learning_rate is None else learning_rate
  return collections.OrderedDict(
      batches=batches, dataset_size=sizes,
      learning_rate=_learning_rates(tf.constant(rate, tf.float32)),
      update_seed=tf.data.Dataset.from_tensors(tf.constant(update_seed, tf.int64)))


def client_input_type(element_spec) -> tff.types.Type:
  """TFF type of ClientInput: batches of `element_spec`, a sequence of int64 sizes, one of at
  most one float32 learning rate and one of the client's int64 update seed."""
  return tff.StructType([
      ('batches', tff.SequenceType(tff.types.tensorflow_to_type(element_spec))),
      ('dataset_size', tff.SequenceType(np.int64)),
      ('learning_rate', tff.SequenceType(np.float32)),
      ('update_seed', tff.SequenceType(np.int64)),
  ])


def preprocess(dataset: tf.data.Dataset, *, shuffle_seed, epochs: int, batch_size: int,
               max_steps=NO_STEP_CAP) -> tf.data.Dataset:
  """Per-epoch seeded shuffle, `epochs` passes, batches (last may be short), <= max_steps."""
  return (dataset.shuffle(_SHUFFLE_BUFFER, seed=shuffle_seed, reshuffle_each_iteration=True)
          .repeat(epochs)
          .batch(batch_size)
          .take(max_steps))


def _first_or_empty(batches: tf.data.Dataset):
  """The first batch of `batches`, or an empty one ([0, ...]) when there is none."""
  empty = tf.nest.map_structure(lambda spec: tf.zeros([0, *spec.shape[1:]], spec.dtype),
                                batches.element_spec)
  return (batches.concatenate(tf.data.Dataset.from_tensors(empty))
          .take(1).get_single_element())


def _stacked_examples(examples: tf.data.Dataset) -> collections.OrderedDict:
  """All elements of `examples` stacked into tensors [n, ...] (n may be 0)."""
  n = examples.reduce(tf.constant(0, tf.int64), lambda total, _: total + 1)
  return _first_or_empty(examples.batch(tf.maximum(n, 1)))


def client_examples(client_data: tff.simulation.datasets.ClientData,
                    client_id) -> collections.OrderedDict:
  """All of a client's examples as tensors [n, ...], to call while tracing a TF graph.

  A `WholeClientData` (client files, synthetic clients) reads or draws them at once; any
  other ClientData's dataset is stacked.
  """
  if isinstance(client_data, whole_client_data.WholeClientData):
    return client_data.serializable_examples_fn(client_id)
  return _stacked_examples(client_data.serializable_dataset_fn(client_id))


def _batched(examples: collections.OrderedDict, batch_size: int) -> tf.data.Dataset:
  """`Dataset.from_tensor_slices(examples).batch(batch_size)`, its batches sliced whole from
  `examples` (one copy per batch, not one per example plus the batch's)."""
  total = tf.shape(tf.nest.flatten(examples)[0], out_type=tf.int64)[0]
  full = total // batch_size

  def whole_batches(t):
    inner = [tf.shape(t)[i] if d is None else d for i, d in enumerate(t.shape[1:], start=1)]
    return tf.reshape(t[:full * batch_size], [-1, batch_size, *inner])

  last = tf.data.Dataset.from_tensors(
      tf.nest.map_structure(lambda t: t[full * batch_size:], examples))
  return (tf.data.Dataset.from_tensor_slices(tf.nest.map_structure(whole_batches, examples))
          .concatenate(last.take(tf.minimum(total % batch_size, 1))))


def _training_input(examples: collections.OrderedDict, client_task, *, epochs: int,
                    batch_size: int) -> collections.OrderedDict:
  """The ClientInput of `client_task` over the client's training `examples` (tensors [n, ...]).

  The batches are gathered from `examples` by batches of example indices that go through
  `preprocess`: the same batches, in the same order, as preprocessing the examples themselves
  (a shuffle's order depends on the count of elements and the seed alone), without passing
  every example through tf.data one by one.
  """
  options = _without_rewrites()
  n = tf.shape(tf.nest.flatten(examples)[0], out_type=tf.int64)[0]
  partial = partial_steps(n, fraction=client_task['step_fraction'], epochs=epochs,
                          batch_size=batch_size)
  caps = tf.stack([client_task['max_steps'], partial])
  cap = tf.reduce_min(tf.where(caps >= 0, caps, tf.int64.max))
  cap = tf.where(cap == tf.int64.max, tf.constant(NO_STEP_CAP, tf.int64), cap)
  # Every epoch's example indices in visiting order, as one batch (one pass of the shuffle).
  visits = _first_or_empty(preprocess(tf.data.Dataset.range(n).with_options(options),
                                      shuffle_seed=client_task['shuffle_seed'], epochs=epochs,
                                      batch_size=tf.maximum(epochs * n, 1)))
  shuffled = tf.nest.map_structure(lambda t: tf.gather(t, visits), examples)
  batches = _batched(shuffled, batch_size).with_options(options).take(cap)
  return collections.OrderedDict(
      batches=batches, dataset_size=tf.data.Dataset.from_tensors(n).with_options(options),
      learning_rate=_learning_rates(client_task['learning_rate']).with_options(options),
      update_seed=tf.data.Dataset.from_tensors(client_task['update_seed']).with_options(options))


def training_input_fn(client_data: tff.simulation.datasets.ClientData, *, epochs: int,
                      batch_size: int, holdout_fraction: float = 0.0
                      ) -> Callable[[Any], collections.OrderedDict]:
  """`fn(client_task) -> ClientInput` over the client's data (its training part when
  `holdout_fraction` > 0), to call while tracing a TF graph."""

  def input_from_task(client_task):
    examples = client_examples(client_data, client_task['client_id'])
    if holdout_fraction > 0:
      examples, _ = holdout.split(examples, seed=client_task['holdout_seed'],
                                  fraction=holdout_fraction)
    return _training_input(examples, client_task, epochs=epochs, batch_size=batch_size)

  return input_from_task


def build_dataset_computation(client_data: tff.simulation.datasets.ClientData, *,
                              epochs: int, batch_size: int,
                              holdout_fraction: float = 0.0) -> tff.Computation:
  """A `tff.tensorflow.computation` mapping a `ClientTask` to the client's ClientInput (of its
  training part when `holdout_fraction` > 0)."""
  return tff.tensorflow.computation(
      training_input_fn(client_data, epochs=epochs, batch_size=batch_size,
                        holdout_fraction=holdout_fraction), TASK_TYPE)


def build_split_computation(client_data: tff.simulation.datasets.ClientData, *, epochs: int,
                            batch_size: int, holdout_fraction: float,
                            eval_batch_size: int) -> tff.Computation:
  """Maps a `ClientTask` to `OrderedDict(train=the ClientInput of the client's training part,
  held_out=its held-out part in batches of eval_batch_size)` (for personalization)."""

  @tff.tensorflow.computation(TASK_TYPE)
  def split_from_task(client_task):
    examples = client_examples(client_data, client_task['client_id'])
    train, held_out = holdout.split(examples, seed=client_task['holdout_seed'],
                                    fraction=holdout_fraction)
    return collections.OrderedDict(
        train=_training_input(train, client_task, epochs=epochs, batch_size=batch_size),
        held_out=tf.data.Dataset.from_tensor_slices(held_out).batch(eval_batch_size))

  return split_from_task


@dataclasses.dataclass(frozen=True)
class ClientInputs:
  """What a client computation receives (`data_type`, CLIENTS-placed) and how, inside its
  graph, that becomes the ClientInput the client update trains on (`to_client_input`)."""
  data_type: tff.types.Type
  to_client_input: Callable[[Any], collections.OrderedDict]


def ready_inputs(element_spec) -> ClientInputs:
  """Clients receive ready ClientInputs with batches of `element_spec` (TFF's own way)."""
  return ClientInputs(client_input_type(element_spec), lambda client_input: client_input)


# A client's data when it builds its own input: its task as a one-element sequence (TFF's
# client work takes sequences).
TASK_SEQUENCE_TYPE = tff.SequenceType(TASK_TYPE)


@tff.tensorflow.computation(TASK_TYPE)
def task_sequence(client_task):
  """A ClientTask as the one-element sequence `task_inputs` clients receive."""
  return tf.data.Dataset.from_tensors(client_task)


def task_inputs(client_data: tff.simulation.datasets.ClientData, *, epochs: int,
                batch_size: int, holdout_fraction: float = 0.0) -> ClientInputs:
  """Clients receive their task (`task_sequence`) and build their ClientInput in the same
  graph that trains on it.

  A ClientInput made by one computation and passed to the next is serialized to a graph and
  rebuilt, its functions instantiated again, for every client and round: on the MNIST 2NN
  that doubled a client's fixed cost (measured: 6-9 ms of worker CPU vs 3-4 ms per client).
  """
  input_from_task = training_input_fn(client_data, epochs=epochs, batch_size=batch_size,
                                      holdout_fraction=holdout_fraction)
  return ClientInputs(TASK_SEQUENCE_TYPE,
                      lambda tasks: input_from_task(tasks.get_single_element()))


def compose_with_tasks(input_computation: tff.Computation,
                       process: tff.learning.templates.LearningProcess
                       ) -> tff.learning.templates.LearningProcess:
  """A learning process taking ClientTasks at clients: each is mapped to its input first.

  TFF's `compose_dataset_computation_with_learning_process` needs a single sequence; ours
  maps to whatever the process's clients receive (a ClientInput structure, or with
  `task_inputs` the task as a sequence: `task_sequence`) and otherwise does the same.
  """
  state_type = process.initialize.type_signature.result

  @tff.federated_computation(state_type, tff.FederatedType(TASK_TYPE, tff.CLIENTS))
  def next_fn(state, tasks):
    return process.next(state, tff.federated_map(input_computation, tasks))

  return tff.learning.templates.LearningProcess(
      process.initialize, next_fn, process.get_model_weights, process.set_model_weights,
      get_hparams_fn=process.get_hparams, set_hparams_fn=process.set_hparams)
