"""Centralized evaluation of the global model on the held-out test set, in the driver."""

from typing import Any, Callable

import numpy as np
import tensorflow as tf
import tensorflow_federated as tff

from tff_experiments.clients import batch_stats
from tff_experiments.models import model as model_lib

_EVAL_BATCH = 1000


def build_evaluator(model: model_lib.Model, *, test_x: np.ndarray, test_y: np.ndarray
                    ) -> Callable[[tff.learning.models.ModelWeights], dict[str, Any]]:
  """Returns `evaluate(model_weights) -> {loss, accuracy, num_examples}` over the test set;
  NaN loss and accuracy for weights that are not all finite (never an accuracy of such a model).

  The Keras instance is built unseeded (its values are always overwritten), so building an
  evaluator draws from no seed and resets no random state.
  """
  keras_model = model.keras()
  loss_fn = model_lib.loss_fn()
  dataset = tf.data.Dataset.from_tensor_slices((test_x, test_y.astype(np.int32))).batch(
      _EVAL_BATCH).cache()

  @tf.function
  def totals():
    stats = batch_stats.zeros()
    for x, y in dataset:
      logits = keras_model(x, training=False)
      stats = batch_stats.accumulate(stats, labels=y, logits=logits, mean_loss=loss_fn(y, logits))
    return batch_stats.means(stats)

  def evaluate(weights: tff.learning.models.ModelWeights) -> dict[str, Any]:
    if not all(np.all(np.isfinite(w)) for w in tf.nest.flatten(weights)):
      # A non-finite model is not evaluated: loss and accuracy NaN (the run is `diverged`).
      return {'loss': float('nan'), 'accuracy': float('nan'), 'num_examples': len(test_y)}
    weights.assign_weights_to(keras_model)
    means = totals()
    return {'loss': float(means['loss']), 'accuracy': float(means['accuracy']),
            'num_examples': int(means['num_examples'])}

  return evaluate
