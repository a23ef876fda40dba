"""A round's fixed-point range per tensor, measured from a histogram the clients sum securely.

The fixed-point step of b-bit secure aggregation is R / L (`masking`): a range R far above the
update's scale rounds it away, one below it clips it. So by default each round measures R before
encoding: every client one-hot encodes, per tensor, the smallest bucket edge at or above its
largest |coordinate| (edges 2^(k / STEPS_PER_OCTAVE) from 2^MIN_EXPONENT to 2^MAX_EXPONENT);
the histograms are summed securely like the update (exact integers, their own mask stream), and
R of a tensor is the highest edge any client reached. So no client is clipped (unless beyond
the top edge), R is within a factor 2^(1 / STEPS_PER_OCTAVE) of the largest coordinate, and the
server learns only how many clients' largest coordinates fell in each bucket.
"""

import numpy as np
import tensorflow as tf

STEPS_PER_OCTAVE = 2
MIN_EXPONENT, MAX_EXPONENT = -24, 24  # 6e-8 .. 1.7e7: a weighted update's coordinates.
EDGES = 2.0**(np.arange(MIN_EXPONENT * STEPS_PER_OCTAVE, MAX_EXPONENT * STEPS_PER_OCTAVE + 1)
              / STEPS_PER_OCTAVE)
BUCKETS = len(EDGES)


def histogram(value) -> tf.Tensor:
  """int64 [tensors, BUCKETS]: per tensor of `value`, one 1 at the first edge >= its largest
  |coordinate| (the last edge if none is; a non-finite coordinate counts as beyond it)."""
  edges = tf.constant(EDGES, tf.float64)

  def one(t):
    t = tf.reshape(tf.abs(tf.cast(t, tf.float64)), [-1])
    largest = tf.reduce_max(tf.concat([t, tf.zeros([1], tf.float64)], 0))
    largest = tf.where(tf.math.is_finite(largest), largest, tf.constant(np.inf, tf.float64))
    below = tf.reduce_sum(tf.cast(edges < largest, tf.int64))
    return tf.one_hot(tf.minimum(below, BUCKETS - 1), BUCKETS, dtype=tf.int64)

  return tf.stack([one(t) for t in tf.nest.flatten(value)])


def from_counts(counts: tf.Tensor) -> tf.Tensor:
  """float64 [tensors]: per tensor, the highest edge with a nonzero count (the lowest if none)."""
  occupied = tf.cast(counts > 0, tf.int64) * tf.range(BUCKETS, dtype=tf.int64)
  return tf.gather(tf.constant(EDGES, tf.float64), tf.reduce_max(occupied, axis=1))
