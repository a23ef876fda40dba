"""The baselines `bench.round_time` (and `bench.startup`, `bench.soak`) compare the package with.

  plain TF loop (floor)  one `tf.function` call per client running its SGD steps over
                         in-memory tensors (fresh shuffle each epoch), numpy weighted mean.
  Keras model.fit        per client set_weights, compile(SGD), fit(shuffle=True), get_weights;
                         numpy weighted mean: the usual hand-written baseline.

Both train on the same arrays the package's client files decode to, from the package's seeded
initial weights, with McMahan et al.'s MNIST settings (`common.MCMAHAN_MNIST`).
"""

import dataclasses
from typing import Optional, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_federated as tff

from bench import common
from tff_experiments.models import model as models

FLOOR = 'plain TF loop (floor)'
EPOCHS = 1  # E of the benchmarked round.


@dataclasses.dataclass(frozen=True)
class ClientArrays:
  """One client's training examples in memory, exactly as the package's client files decode."""
  x: np.ndarray  # float32 [n, H, W, C] in [0, 1]
  y: np.ndarray  # int32 [n]


def read_clients(train: tff.simulation.datasets.ClientData,
                 client_ids: Sequence[str]) -> list[ClientArrays]:
  """Reads the cohort from the package's client files, so every way trains on the same data."""
  clients = []
  for client_id in client_ids:
    batch = next(iter(train.create_tf_dataset_for_client(client_id).batch(1_000_000)))
    clients.append(ClientArrays(x=batch['x'].numpy(), y=batch['y'].numpy()))
  return clients


def weighted_mean(client_weights: Sequence[list[np.ndarray]],
                  sizes: Sequence[int]) -> list[np.ndarray]:
  """FedAvg's average of client models, weighted by their example counts n_k."""
  total = float(sum(sizes))
  return [sum(w[i] * (n / total) for w, n in zip(client_weights, sizes))
          for i in range(len(client_weights[0]))]


def as_model_weights(weights: list[np.ndarray]) -> tff.learning.models.ModelWeights:
  """Keras `get_weights()` of the (all-trainable) benchmark models as TFF ModelWeights."""
  return tff.learning.models.ModelWeights(trainable=list(weights), non_trainable=[])


def build_keras(model: str, data) -> tf.keras.Model:
  """The package's seeded Keras model (seed 0, as the package's initial weights)."""
  keras_model = models.build_keras(model, input_shape=data.test_x.shape[1:],
                                   num_classes=data.num_classes,
                                   seed=common.MCMAHAN_MNIST['seed'])
  if keras_model.non_trainable_weights:
    raise ValueError(f'{model}: as_model_weights assumes no non-trainable weights')
  return keras_model


def local_sgd_fn(keras_model: tf.keras.Model, *, learning_rate: float, batch_size: int):
  """A `tf.function(x, y, orders)` doing a client's SGD steps on the model's variables.

  `orders[e]` is the example order of epoch e; batches are consecutive slices of it (the last
  may be short), one plain SGD step each: what the package's client update computes.
  """
  loss_fn = models.loss_fn()

  @tf.function
  def train(x, y, orders):
    n = tf.shape(y)[0]
    for epoch in tf.range(tf.shape(orders)[0]):
      for start in tf.range(0, n, batch_size):
        index = orders[epoch, start:start + batch_size]
        with tf.GradientTape() as tape:
          logits = keras_model(tf.gather(x, index), training=True)
          loss = loss_fn(tf.gather(y, index), logits)
        grads = tape.gradient(loss, keras_model.trainable_variables)
        for variable, grad in zip(keras_model.trainable_variables, grads):
          variable.assign_sub(learning_rate * grad)

  return train


class PlainLoop:
  """(b) The floor: the same SGD steps client after client in one process, no TFF."""
  name = FLOOR

  def __init__(self, model: str, data, clients: Sequence[ClientArrays]):
    self._model = build_keras(model, data)
    self._global = self._model.get_weights()
    self._clients = [(tf.constant(c.x), tf.constant(c.y)) for c in clients]
    self._sizes = [len(c.y) for c in clients]
    self._train = local_sgd_fn(self._model,
                               learning_rate=common.MCMAHAN_MNIST['client_learning_rate'],
                               batch_size=common.MCMAHAN_MNIST['client_batch_size'])

  def run_round(self, round_num: int, cohort: Optional[Sequence[int]] = None) -> None:
    """Trains each client of `cohort` (indices; default all) from the global model, then
    averages the client models."""
    trained, sizes = [], []
    for index in range(len(self._clients)) if cohort is None else cohort:
      (x, y), n = self._clients[index], self._sizes[index]
      rng = np.random.default_rng([common.MCMAHAN_MNIST['seed'], round_num, index])
      orders = np.stack([rng.permutation(n) for _ in range(EPOCHS)]).astype(np.int32)
      self._model.set_weights(self._global)
      self._train(x, y, tf.constant(orders))
      trained.append(self._model.get_weights())
      sizes.append(n)
    self._global = weighted_mean(trained, sizes)

  def weights(self) -> tff.learning.models.ModelWeights:
    return as_model_weights(self._global)


class KerasFit:
  """(c) The hand-written Keras baseline: compile and fit a model per client, average."""
  name = 'Keras model.fit'

  def __init__(self, model: str, data, clients: Sequence[ClientArrays]):
    self._model = build_keras(model, data)
    self._global = self._model.get_weights()
    self._clients = list(clients)

  def run_round(self, round_num: int) -> None:
    """Per client: set_weights, compile(SGD), fit one pass; then the weighted mean."""
    del round_num  # fit shuffles with Keras's own (seeded) generator.
    trained = []
    for client in self._clients:
      self._model.set_weights(self._global)
      self._model.compile(
          optimizer=tf.keras.optimizers.SGD(common.MCMAHAN_MNIST['client_learning_rate']),
          loss=models.loss_fn())
      self._model.fit(client.x, client.y, batch_size=common.MCMAHAN_MNIST['client_batch_size'],
                      epochs=EPOCHS, shuffle=True, verbose=0)
      trained.append(self._model.get_weights())
    self._global = weighted_mean(trained, [len(c.y) for c in self._clients])

  def weights(self) -> tff.learning.models.ModelWeights:
    return as_model_weights(self._global)
