"""`local_sgd` as a `tff.learning.templates.ClientWorkProcess`, reporting training metrics.

The client data type is `client_data.ClientInput`: the client's batches plus a one-element
sequence with its dataset size (TFF's client work takes sequences, or structures of them).
"""

import collections

import tensorflow as tf
import tensorflow_federated as tff

from tff_experiments.clients import batch_stats
from tff_experiments.clients import client_data
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


def build_client_work(model: model_lib.Model, *, update_fn
                      ) -> tff.learning.templates.ClientWorkProcess:
  """Wraps `update_fn` (from `local_update.local_sgd`) as a stateless ClientWorkProcess."""
  model_weights_type = model.weights_type()
  data_type = client_data.client_input_type(model.input_spec)

  @tff.tensorflow.computation(model_weights_type, data_type)
  def client_update(weights, client_input):
    delta, weight, stats = update_fn(weights, client_input)
    return tff.learning.templates.ClientResult(update=delta, update_weight=weight), stats

  @tff.tensorflow.computation(client_update.type_signature.result[1])
  def _steps(stats):
    return stats['num_steps']

  @tff.federated_computation
  def init_fn():
    return tff.federated_value((), tff.SERVER)

  @tff.federated_computation(
      tff.FederatedType((), tff.SERVER),
      tff.FederatedType(model_weights_type, tff.CLIENTS),
      tff.FederatedType(data_type, tff.CLIENTS))
  def next_fn(state, weights, client_input):
    result, stats = tff.federated_map(client_update, (weights, client_input))
    steps = tff.federated_map(_steps, stats)
    train = tff.federated_map(_finalize_train_metrics, (
        tff.federated_sum(stats), tff.federated_min(steps), tff.federated_max(steps)))
    measurements = tff.federated_zip(collections.OrderedDict(train=train))
    return tff.templates.MeasuredProcessOutput(state, result, measurements)

  return tff.learning.templates.ClientWorkProcess(init_fn, next_fn)
