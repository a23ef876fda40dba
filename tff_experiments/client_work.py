"""The client update of FedAvg-style algorithms, as this package's own TFF computation.

`local_sgd` is the update researchers read and change: plain SGD over the client's batches,
returning the model delta, its aggregation weight, the number of local steps and training
metrics. `build_client_work` wraps it in a `tff.learning.templates.ClientWorkProcess` so it
composes with TFF's distributor, aggregators and finalizers.
"""

import collections

import tensorflow as tf
import tensorflow_federated as tff

from tff_experiments import models

# Per-client training statistics, summed over the cohort before finalizing.
_STAT_NAMES = ('loss_sum', 'num_correct', 'num_examples', 'num_steps')


def local_sgd(model: models.Model, *, learning_rate: float):
  """Returns `update(initial_weights, dataset)` running local SGD on one client.

  Call it while tracing a TF graph (a `tff.tensorflow.computation`): it builds the model's
  variables there, sets them to `initial_weights` and takes one SGD step per batch, in place.
  It returns `(update, update_weight, stats)`: `update = initial_trainable - final_trainable`
  (a pseudo-gradient: server SGD with learning rate 1 then yields plain FedAvg),
  `update_weight` the number of examples processed (McMahan's n_k; zero when the update is not
  finite, so a diverged client is dropped), and `stats` the sums in `_STAT_NAMES`.
  """

  def update(initial_weights, dataset):
    keras_model = model.keras()
    loss_fn = models.loss_fn()
    trainable = keras_model.trainable_variables
    variables = (trainable, keras_model.non_trainable_variables)

    @tf.function
    def train():
      for variable, value in zip(tf.nest.flatten(variables), tf.nest.flatten(initial_weights)):
        variable.assign(value)

      def sgd_step(stats, batch):
        with tf.GradientTape() as tape:
          logits = keras_model(batch['x'], training=True)
          loss = loss_fn(batch['y'], logits)
        for variable, grad in zip(trainable, tape.gradient(loss, trainable)):
          variable.assign_sub(learning_rate * grad)
        batch_size = tf.shape(batch['y'])[0]
        correct = tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), batch['y'])
        return collections.OrderedDict(
            loss_sum=stats['loss_sum'] + loss * tf.cast(batch_size, tf.float32),
            num_correct=stats['num_correct'] + tf.reduce_sum(tf.cast(correct, tf.int64)),
            num_examples=stats['num_examples'] + tf.cast(batch_size, tf.int64),
            num_steps=stats['num_steps'] + 1,
        )

      zero_stats = collections.OrderedDict(
          loss_sum=tf.constant(0.0), num_correct=tf.constant(0, tf.int64),
          num_examples=tf.constant(0, tf.int64), num_steps=tf.constant(0, tf.int64))
      stats = dataset.reduce(zero_stats, sgd_step)
      delta = tuple(w - v for w, v in zip(initial_weights.trainable, trainable))
      finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(d)) for d in delta])
      delta = tuple(tf.where(finite, d, tf.zeros_like(d)) for d in delta)
      weight = tf.where(finite, tf.cast(stats['num_examples'], tf.float32), 0.0)
      return delta, weight, stats

    return train()

  return update


@tff.tensorflow.computation
def _finalize_train_metrics(stats):
  """Cohort sums -> mean loss, accuracy and totals reported as `client_work/train/*`."""
  examples = tf.maximum(tf.cast(stats['num_examples'], tf.float32), 1.0)
  return collections.OrderedDict(
      loss=stats['loss_sum'] / examples,
      accuracy=tf.cast(stats['num_correct'], tf.float32) / examples,
      num_examples=stats['num_examples'],
      num_steps=stats['num_steps'],
  )


def build_client_work(model: models.Model, *,
                      learning_rate: float) -> tff.learning.templates.ClientWorkProcess:
  """Wraps `local_sgd` as a stateless `ClientWorkProcess` reporting training metrics."""
  model_weights_type = model.weights_type()
  data_type = tff.SequenceType(tff.types.tensorflow_to_type(model.input_spec))
  update_fn = local_sgd(model, learning_rate=learning_rate)

  @tff.tensorflow.computation(model_weights_type, data_type)
  def client_update(weights, dataset):
    delta, weight, stats = update_fn(weights, dataset)
    return tff.learning.templates.ClientResult(update=delta, update_weight=weight), stats

  @tff.federated_computation
  def init_fn():
    return tff.federated_value((), tff.SERVER)

  @tff.federated_computation(
      tff.FederatedType((), tff.SERVER),
      tff.FederatedType(model_weights_type, tff.CLIENTS),
      tff.FederatedType(data_type, tff.CLIENTS))
  def next_fn(state, weights, client_data):
    result, stats = tff.federated_map(client_update, (weights, client_data))
    train = tff.federated_map(_finalize_train_metrics, tff.federated_sum(stats))
    measurements = tff.federated_zip(collections.OrderedDict(train=train))
    return tff.templates.MeasuredProcessOutput(state, result, measurements)

  return tff.learning.templates.ClientWorkProcess(init_fn, next_fn)

