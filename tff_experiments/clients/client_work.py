"""`local_sgd` as a `tff.learning.templates.ClientWorkProcess`, reporting training metrics.

What clients receive is a `client_data.ClientInputs`' data type: ready ClientInputs (the
client's batches plus one-element sequences of its dataset size, learning rate and update
seed: TFF's client work takes sequences, or structures of them), or the client's task, from
which the client computation builds its ClientInput itself (`client_data.task_inputs`). Each
client's result carries its update seed in its weight (`update_weight`).
"""

import collections
from typing import Optional

import tensorflow as tf
import tensorflow_federated as tff

from tff_experiments.clients import batch_stats
from tff_experiments.clients import client_data
from tff_experiments.clients import update_weight
from tff_experiments.models import model as model_lib


@tff.tensorflow.computation
def _finalize_train_metrics(stats, min_steps, max_steps):
  """Cohort sums -> mean loss and accuracy, the counts, and the spread of local steps."""
  return collections.OrderedDict(
      **batch_stats.means(stats), num_clients=stats['num_clients'],
      nonfinite_clients=stats['nonfinite_clients'],
      mean_client_steps=tf.math.divide_no_nan(tf.cast(stats['num_steps'], tf.float32),
                                              tf.cast(stats['num_clients'], tf.float32)),
      min_client_steps=min_steps, max_client_steps=max_steps)


def build_client_work(model: model_lib.Model, *, update_fn,
                      inputs: Optional[client_data.ClientInputs] = None
                      ) -> tff.learning.templates.ClientWorkProcess:
  """Wraps `update_fn` (from `local_update.local_sgd`) as a stateless ClientWorkProcess over
  `inputs` (default: ready ClientInputs); its results' weights are `update_weight.TYPE`."""
  model_weights_type = model.weights_type()
  inputs = inputs or client_data.ready_inputs(model.input_spec)
  data_type = inputs.data_type

  @tff.tensorflow.computation(model_weights_type, data_type)
  def client_update(weights, data):
    client_input = inputs.to_client_input(data)
    delta, weight, stats = update_fn(weights, client_input)
    seed = client_input['update_seed'].get_single_element()
    # The steps again beside the stats: their min and max need them alone, and a selection
    # costs no TF call per client.
    return (tff.learning.templates.ClientResult(
        update=delta, update_weight=update_weight.make(weight, seed)), stats, stats['num_steps'])

  @tff.federated_computation
  def init_fn():
    return tff.federated_value((), tff.SERVER)

  @tff.federated_computation(
      tff.FederatedType((), tff.SERVER),
      tff.FederatedType(model_weights_type, tff.CLIENTS),
      tff.FederatedType(data_type, tff.CLIENTS))
  def next_fn(state, weights, data):
    result, stats, steps = tff.federated_map(client_update, (weights, data))
    train = tff.federated_map(_finalize_train_metrics, (
        tff.federated_sum(stats), tff.federated_min(steps), tff.federated_max(steps)))
    measurements = tff.federated_zip(collections.OrderedDict(train=train))
    return tff.templates.MeasuredProcessOutput(state, result, measurements)

  return tff.learning.templates.ClientWorkProcess(init_fn, next_fn)
