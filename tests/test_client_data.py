"""Client keys and the per-round client dataset pipeline."""

import collections

import numpy as np
import tensorflow as tf

from tff_experiments import client_data


def test_keys_are_deterministic_and_vary_by_round_and_client():
  a = client_data.client_keys(['x', 'y'], seed=1, round_num=3)
  assert a == client_data.client_keys(['x', 'y'], seed=1, round_num=3)
  assert [k.split('|', 1)[1] for k in a] == ['x', 'y']
  seeds = {k.split('|')[0] for k in a + client_data.client_keys(['x'], seed=1, round_num=4)
           + client_data.client_keys(['x'], seed=2, round_num=3)}
  assert len(seeds) == 4
  assert all(0 <= int(s) < 2**63 for s in seeds)


def test_client_ids_containing_the_separator_survive():
  key, = client_data.client_keys(['a|b'], seed=0, round_num=1)
  assert key.split('|', 1)[1] == 'a|b'


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
