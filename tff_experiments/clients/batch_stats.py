"""Running sums of loss, correct predictions, examples and steps over batches, and their means.

One helper for local training, centralized evaluation and (later) personalization, so every
place computes loss and accuracy the same way: sums weighted by batch size, divided once.
"""

import collections

import tensorflow as tf

NAMES = ('loss_sum', 'num_correct', 'num_examples', 'num_steps')


def zeros() -> collections.OrderedDict:
  """Empty sums."""
  return collections.OrderedDict(
      loss_sum=tf.constant(0.0), num_correct=tf.constant(0, tf.int64),
      num_examples=tf.constant(0, tf.int64), num_steps=tf.constant(0, tf.int64))


def accumulate(stats, *, labels: tf.Tensor, logits: tf.Tensor,
               mean_loss: tf.Tensor) -> collections.OrderedDict:
  """`stats` plus one batch whose mean loss over its examples is `mean_loss`."""
  batch_size = tf.shape(labels, out_type=tf.int64)[0]
  correct = tf.equal(tf.argmax(logits, axis=-1, output_type=labels.dtype), labels)
  return collections.OrderedDict(
      loss_sum=stats['loss_sum'] + mean_loss * tf.cast(batch_size, tf.float32),
      num_correct=stats['num_correct'] + tf.reduce_sum(tf.cast(correct, tf.int64)),
      num_examples=stats['num_examples'] + batch_size,
      num_steps=stats['num_steps'] + 1,
  )


def means(stats) -> collections.OrderedDict:
  """Mean loss and accuracy over the examples (0 when there were none), with the counts.

  The accuracy is NaN when the loss is not finite: the argmax of NaN or infinite logits (a
  diverged model predicts class 0 everywhere) is no prediction, so it never counts as one.
  """
  examples = tf.maximum(tf.cast(stats['num_examples'], tf.float32), 1.0)
  accuracy = tf.cast(stats['num_correct'], tf.float32) / examples
  return collections.OrderedDict(
      loss=stats['loss_sum'] / examples,
      accuracy=tf.where(tf.math.is_finite(stats['loss_sum']), accuracy, float('nan')),
      num_examples=stats['num_examples'],
      num_steps=stats['num_steps'],
  )
