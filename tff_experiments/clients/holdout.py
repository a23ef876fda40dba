"""Each client's held-out examples (personalization): a seeded fraction; the rest trains.

The split is drawn in the TFF worker, where the client's data is read (the driver never reads
it), from a per-client seed that `core.seeds` makes in the driver from (--split_seed, client id)
and that travels in the client's task like its shuffle seed. Of a client's n examples,
k = round(fraction * n), at most n - 1 (every client keeps a training example), are held out,
chosen by a stateless draw of that seed: the same k examples every round and in every
computation that splits the client (training, personalization).
"""

import collections

import tensorflow as tf

from tff_experiments.core import seeds

_PURPOSE = 'holdout'


def client_seed(split_seed: int, client_id: str) -> int:
  """The seed of `client_id`'s split, from `--split_seed` (as the client split itself)."""
  return seeds.derive(split_seed, purpose=_PURPOSE, client=client_id)


def held_out_count(num_examples: tf.Tensor, fraction: float) -> tf.Tensor:
  """round(fraction * n), at most n - 1 (at least 0), int64."""
  n = tf.cast(num_examples, tf.int64)
  wanted = tf.cast(tf.round(fraction * tf.cast(n, tf.float64)), tf.int64)
  return tf.maximum(tf.minimum(wanted, n - 1), 0)


def held_out_mask(num_examples: tf.Tensor, *, seed: tf.Tensor, fraction: float) -> tf.Tensor:
  """bool [n]: which of the client's examples (in file order) are held out."""
  n = tf.cast(num_examples, tf.int64)
  draws = tf.random.stateless_uniform(tf.reshape(n, [1]),
                                      seed=tf.stack([tf.cast(seed, tf.int64), 0]))
  ranks = tf.argsort(tf.argsort(draws))  # Example i's place in a seeded random order.
  return tf.cast(ranks, tf.int64) < held_out_count(n, fraction)


def split(examples: collections.OrderedDict, *, seed: tf.Tensor, fraction: float
          ) -> tuple[collections.OrderedDict, collections.OrderedDict]:
  """(training part, held-out part) of a client's examples (tensors [n, ...]), each in file
  order."""
  n = tf.shape(tf.nest.flatten(examples)[0], out_type=tf.int64)[0]
  mask = held_out_mask(n, seed=seed, fraction=fraction)

  def part(held_out) -> collections.OrderedDict:
    return tf.nest.map_structure(lambda t: tf.boolean_mask(t, held_out), examples)

  return part(tf.logical_not(mask)), part(mask)
