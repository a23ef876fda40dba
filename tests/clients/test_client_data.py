"""The per-round client dataset pipeline: tasks -> seeded, capped batches plus dataset size."""

import collections

import numpy as np
import tensorflow as tf

from tff_experiments.clients import client_data


def _labels(dataset):
  return np.concatenate([b['y'].numpy() for b in dataset])


def test_preprocess_shuffles_each_epoch_and_keeps_every_example():
  base = tf.data.Dataset.from_tensor_slices(collections.OrderedDict(
      x=np.zeros((23, 1), np.float32), y=np.arange(23, dtype=np.int32)))
  ds = client_data.preprocess(base, shuffle_seed=tf.constant(7, tf.int64), epochs=2,
                              batch_size=5)
  batches = [b['y'].numpy() for b in ds]
  assert [len(b) for b in batches] == [5] * 9 + [1]  # 46 examples, last batch short.
  labels = np.concatenate(batches)
  first, second = labels[:23], labels[23:]
  assert sorted(first) == list(range(23)) and sorted(second) == list(range(23))
  assert list(first) != list(range(23)) and list(first) != list(second)
  again = client_data.preprocess(base, shuffle_seed=tf.constant(7, tf.int64), epochs=2,
                                 batch_size=5)
  np.testing.assert_array_equal(_labels(again), labels)
  other = client_data.preprocess(base, shuffle_seed=tf.constant(8, tf.int64), epochs=2,
                                 batch_size=5)
  assert list(_labels(other)) != list(labels)
