"""batch_stats: sums and means of loss and accuracy, never an accuracy from non-finite logits."""

import math

import numpy as np
import tensorflow as tf

from tff_experiments.clients import batch_stats


def _means(logits, labels, mean_loss):
  stats = batch_stats.accumulate(batch_stats.zeros(), labels=tf.constant(labels, tf.int32),
                                 logits=tf.constant(logits, tf.float32),
                                 mean_loss=tf.constant(mean_loss, tf.float32))
  return {k: v.numpy() for k, v in batch_stats.means(stats).items()}


def test_means_are_the_hand_computed_loss_and_accuracy():
  means = _means([[2.0, 1.0], [0.0, 3.0], [5.0, 4.0], [1.0, 0.0]], [0, 1, 1, 1], 0.75)
  assert means['accuracy'] == np.float32(0.5) and means['loss'] == np.float32(0.75)
  assert (means['num_examples'], means['num_steps']) == (4, 1)


def test_accuracy_of_non_finite_outputs_is_nan_not_a_count_of_argmax_zero():
  # NaN logits argmax to class 0: with every label 0 they would count as 100% correct.
  for logits, loss in (([[np.nan, np.nan]] * 3, np.nan), ([[np.inf, np.inf]] * 3, np.inf)):
    means = _means(logits, [0, 0, 0], loss)
    assert math.isnan(means['accuracy']), logits
    assert means['num_examples'] == 3
