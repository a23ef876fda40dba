"""The client update of FedAvg-style algorithms: `local_sgd`, parametrized, never copied.

Options cover the algorithms that differ only in the client: a regularizer added to the local
loss (FedProx's proximal term), heavy-ball momentum, the aggregation weight's definition
(`WEIGHTINGS`), and whether the delta is divided by the local steps (FedNova's normalized
update). Step caps and the round's learning rate arrive with the client's data (`client_data`:
TFF has no per-client argument for them).
"""

import collections
from typing import Callable, Optional

import tensorflow as tf

from tff_experiments.clients import batch_stats
from tff_experiments.core import registry
from tff_experiments.models import model as model_lib

# regularizer(trainable variables, initial trainable values) -> scalar added to the batch loss.
Regularizer = Callable[[list, tuple], tf.Tensor]

# name -> fn(stats, dataset_size_fn) -> float32 aggregation weight of one client's update.
# `dataset_size_fn()` reads the client's example count (lazily: a ClientInput handed without a size
# counts its batches, a second read of its data).
WEIGHTINGS = registry.Registry('client weighting', flag='client_weighting', entries={
    'num_examples': lambda stats, size_fn: tf.cast(stats['num_examples'], tf.float32),
    'dataset_size': lambda stats, size_fn: tf.cast(size_fn(), tf.float32),
    'uniform': lambda stats, size_fn: tf.constant(1.0),
})


def proximal_term(mu: float) -> Regularizer:
  """FedProx (Li et al. 2020): mu/2 * ||w - w_global||^2 over the trainable weights."""
  def regularizer(trainable, initial_trainable):
    return 0.5 * mu * tf.add_n([tf.reduce_sum(tf.square(w - w0))
                                for w, w0 in zip(trainable, initial_trainable)])
  return regularizer


def effective_steps(num_steps: tf.Tensor, momentum: float) -> tf.Tensor:
  """FedNova's ||a||_1 for `num_steps` (float32) local steps: the steps themselves for plain SGD;
  with heavy-ball momentum rho, (tau - rho (1 - rho^tau) / (1 - rho)) / (1 - rho), the sum of
  the weights the steps' gradients end up with (Wang et al. 2020; NIID-Bench)."""
  if not momentum:
    return num_steps
  rho = momentum
  return (num_steps - rho * (1.0 - tf.pow(rho, num_steps)) / (1.0 - rho)) / (1.0 - rho)


def local_sgd(model: model_lib.Model, *, learning_rate: float, momentum: float = 0.0,
              regularizer: Optional[Regularizer] = None, weighting: str = 'num_examples',
              normalize_by_steps: bool = False, full_batch_gradient: bool = False):
  """Returns `update(initial_weights, client_input) -> (update, weight, stats)` for one client.

  Call it while tracing a TF graph (a `tff.tensorflow.computation`): it builds the model's
  variables there, sets them to `initial_weights` and takes one SGD step per batch of
  `client_input['batches']`, in place, at the rate in `client_input['learning_rate']` (the
  round's, from its task), or `learning_rate` when that sequence is empty. With `momentum` m > 0
  each step is heavy-ball (PyTorch's, as in NIID-Bench): buf = m buf + g; w -= lr buf, the
  buffer zero at the start of every client's round; m = 0 is plain SGD. `update` is
  `initial - final` trainable weights (a pseudo-gradient: server SGD at learning rate 1 gives
  plain FedAvg), divided by the local steps (`effective_steps` with momentum) when
  `normalize_by_steps`. With `full_batch_gradient` (FedSGD) the batches only accumulate the
  gradient at the initial weights, and one step of the mean gradient over all their examples is
  taken (one local step; momentum changes nothing). `weight` follows `weighting` (a `WEIGHTINGS`
  name) and is 0 when the update is not finite, so a diverged client drops out of the average.
  `stats` holds the `batch_stats` sums plus `num_clients` (1) and `nonfinite_clients` (0 or 1).
  """
  weight_fn = WEIGHTINGS.get(weighting)

  def update(initial_weights, client_input):
    keras_model = model.keras()
    loss_fn = model_lib.loss_fn()
    trainable = keras_model.trainable_variables
    variables = (trainable, keras_model.non_trainable_variables)

    def gradients(batch):
      """(logits, data loss, gradients of loss + regularizer) at the current weights."""
      with tf.GradientTape() as tape:
        logits = keras_model(batch['x'], training=True)
        loss = loss_fn(batch['y'], logits)
        objective = loss
        if regularizer is not None:
          objective += regularizer(trainable, initial_weights.trainable)
      return logits, loss, tape.gradient(objective, trainable)

    def _full_batch_step(batches, rate):
      """Sums batch-size-weighted gradients at the initial weights, then one mean step."""
      def accumulate(carry, batch):
        stats, sums = carry
        logits, loss, grads = gradients(batch)
        size = tf.cast(tf.shape(batch['y'])[0], tf.float32)
        sums = tuple(s + size * g for s, g in zip(sums, grads))
        return (batch_stats.accumulate(stats, labels=batch['y'], logits=logits,
                                       mean_loss=loss), sums)

      zeros = tuple(tf.zeros_like(v) for v in trainable)
      stats, sums = batches.reduce((batch_stats.zeros(), zeros), accumulate)
      examples = tf.maximum(tf.cast(stats['num_examples'], tf.float32), 1.0)
      for variable, total in zip(trainable, sums):
        variable.assign_sub(rate * total / examples)
      stats = collections.OrderedDict(stats)
      stats['num_steps'] = tf.minimum(stats['num_steps'], 1)  # One step (none without data).
      return stats

    @tf.function(autograph=False)  # Plain TF control flow: no source conversion at start-up.
    def train():
      for variable, value in zip(tf.nest.flatten(variables), tf.nest.flatten(initial_weights)):
        variable.assign(value)

      # The round's rate if the input carries one, else the constant. (An optional, not a
      # `reduce`: no function for TF to instantiate for every client.)
      given = iter(client_input['learning_rate']).get_next_as_optional()
      rate = tf.cond(given.has_value(), given.get_value,
                     lambda: tf.constant(learning_rate, tf.float32))

      def sgd_step(carry, batch):
        stats, buffers = carry
        logits, loss, grads = gradients(batch)
        if momentum:
          buffers = tuple(momentum * b + g for b, g in zip(buffers, grads))
          grads = buffers
        # Every gradient first: an update while a read of its variable is still in use
        # would copy the variable (TF's copy-on-write), ~7% of the worker's CPU (2NN).
        with tf.control_dependencies(grads):
          for variable, grad in zip(trainable, grads):
            variable.assign_sub(rate * grad)
        return (batch_stats.accumulate(stats, labels=batch['y'], logits=logits, mean_loss=loss),
                buffers)

      if full_batch_gradient:
        stats = _full_batch_step(client_input['batches'], rate)
      else:
        buffers = tuple(tf.zeros_like(v) for v in trainable) if momentum else ()
        # A while loop over an iterator, not `Dataset.reduce`: TF instantiates a reduce's
        # function anew for every client and round (~10% of the worker's CPU, 2NN).
        batches = iter(client_input['batches'])
        stats, _, _ = tf.while_loop(
            lambda stats, buffers, batch: batch.has_value(),
            lambda stats, buffers, batch: (*sgd_step((stats, buffers), batch.get_value()),
                                           batches.get_next_as_optional()),
            (batch_stats.zeros(), buffers, batches.get_next_as_optional()))
      delta = tuple(w - v for w, v in zip(initial_weights.trainable, trainable))
      if normalize_by_steps:
        steps = effective_steps(tf.cast(tf.maximum(stats['num_steps'], 1), tf.float32),
                                momentum)
        delta = tuple(d / steps for d in delta)
      finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(d)) for d in delta])
      delta = tuple(tf.where(finite, d, tf.zeros_like(d)) for d in delta)
      size_fn = lambda: client_input['dataset_size'].reduce(tf.constant(0, tf.int64),
                                                            lambda total, n: total + n)
      weight = tf.where(finite, weight_fn(stats, size_fn), 0.0)
      stats = collections.OrderedDict(
          **stats, num_clients=tf.constant(1, tf.int64),
          nonfinite_clients=tf.cast(tf.logical_not(finite), tf.int64))
      return delta, weight, stats

    return train()

  return update
