"""Seeded noise on tensor structures: stateless TF draws keyed by a (2,) int64 seed pair.

TFF's and tensorflow-privacy's random ops draw from the clock or from unseeded ops, so two
runs (or a run and its resume) would differ. These draws are pure functions of their seed:
aggregation layers (local DP, quantization) seed them per client update, DP queries per
release. Here, below both, because the privacy mechanisms and the aggregator layers that
apply them draw the same noise.
"""

import tensorflow as tf


def leaf_seed(seed: tf.Tensor, index: int, stream: int = 0) -> tf.Tensor:
  """A distinct (2,) seed per tensor `index` (and `stream`) of a structure from one seed."""
  return tf.stack([seed[0], seed[1] * 1009 + 7 * index + 104729 * stream])


def gaussian_noise(structure, *, stddev, seed: tf.Tensor, stream: int = 0):
  """Independent N(0, stddev^2) noise shaped like each tensor of `structure`."""
  leaves = tf.nest.flatten(structure)
  noise = [tf.cast(stddev, t.dtype) * tf.random.stateless_normal(
      tf.shape(t), seed=leaf_seed(seed, i, stream), dtype=t.dtype)
           for i, t in enumerate(leaves)]
  return tf.nest.pack_sequence_as(structure, noise)


def laplace_noise(structure, *, scale, seed: tf.Tensor, stream: int = 0):
  """Independent Laplace(0, scale) noise: scale * (E1 - E2) for E1, E2 ~ Exp(1)."""
  leaves = tf.nest.flatten(structure)

  def draw(t, i):
    u = tf.random.stateless_uniform(tf.concat([[2], tf.shape(t)], 0),
                                    seed=leaf_seed(seed, i, stream), dtype=t.dtype)
    exponentials = -tf.math.log1p(-u)  # u in [0, 1): finite.
    return tf.cast(scale, t.dtype) * (exponentials[0] - exponentials[1])

  return tf.nest.pack_sequence_as(structure, [draw(t, i) for i, t in enumerate(leaves)])
