"""Centralized evaluation of the global model on the held-out test set, in the driver."""

from typing import Callable

import numpy as np
import tensorflow as tf
import tensorflow_federated as tff

from tff_experiments import models

_EVAL_BATCH = 1000


def build_evaluator(model_name: str, *, test_x: np.ndarray, test_y: np.ndarray,
                    num_classes: int) -> Callable[[tff.learning.models.ModelWeights],
                                                  dict[str, float]]:
  """Returns `evaluate(model_weights) -> {'loss', 'accuracy'}` over the whole test set."""
  keras_model = models.build_keras(model_name, input_shape=test_x.shape[1:],
                                   num_classes=num_classes, seed=0)
  loss_fn = models.loss_fn()
  dataset = tf.data.Dataset.from_tensor_slices((test_x, test_y.astype(np.int32))).batch(
      _EVAL_BATCH).cache()

  @tf.function
  def totals():
    loss_sum, correct = tf.constant(0.0), tf.constant(0, tf.int64)
    for x, y in dataset:
      logits = keras_model(x, training=False)
      loss_sum += loss_fn(y, logits) * tf.cast(tf.shape(y)[0], tf.float32)
      correct += tf.reduce_sum(tf.cast(
          tf.equal(tf.argmax(logits, -1, output_type=tf.int32), y), tf.int64))
    return loss_sum, correct

  def evaluate(weights: tff.learning.models.ModelWeights) -> dict[str, float]:
    weights.assign_weights_to(keras_model)
    loss_sum, correct = totals()
    n = len(test_y)
    return {'loss': float(loss_sum) / n, 'accuracy': float(correct) / n}

  return evaluate
