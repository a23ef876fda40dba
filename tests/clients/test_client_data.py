"""The per-round client dataset pipeline: tasks -> seeded, capped batches plus dataset size."""

import collections

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_federated as tff

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


def _client(n):
  rng = np.random.default_rng(n)
  return tff.simulation.datasets.TestClientData({'c': collections.OrderedDict(
      x=rng.random((n, 2, 2, 1)).astype(np.float32), y=np.arange(n, dtype=np.int32))})


def _batches(dataset):
  return [(b['x'].numpy(), b['y'].numpy()) for b in dataset]


@pytest.mark.parametrize('n,epochs,batch_size,max_steps', [
    (23, 1, 5, None), (23, 3, 4, None), (7, 2, 10, 1), (10, 2, 3, 5), (1, 2, 1, None)])
def test_training_input_gathers_the_batches_preprocessing_the_examples_gives(
    n, epochs, batch_size, max_steps):
  # The input gathers batches by shuffled indices; the reference shuffles the examples
  # themselves. The same seed must give the same batches, bitwise, in the same order.
  data = _client(n)
  task = {k: tf.constant(v) for k, v in client_data.task(
      'c', shuffle_seed=11, update_seed=12, max_steps=max_steps).items()}
  built = client_data.training_input_fn(data, epochs=epochs, batch_size=batch_size)(task)
  reference = client_data.preprocess(
      data.create_tf_dataset_for_client('c'), shuffle_seed=tf.constant(11, tf.int64),
      epochs=epochs, batch_size=batch_size, max_steps=-1 if max_steps is None else max_steps)
  got, want = _batches(built['batches']), _batches(reference)
  assert len(got) == len(want) > 0
  for (gx, gy), (wx, wy) in zip(got, want):
    np.testing.assert_array_equal(gy, wy)
    np.testing.assert_array_equal(gx, wx)
  assert [int(s) for s in built['dataset_size']] == [n]
  assert [int(s) for s in built['update_seed']] == [12]  # The task's, for its update's draws.


def test_training_input_of_a_client_without_examples_has_no_batches():
  built = client_data.training_input_fn(_client(0), epochs=2, batch_size=3)(
      {k: tf.constant(v) for k, v in client_data.task('c', shuffle_seed=1, update_seed=2).items()})
  assert _batches(built['batches']) == []
  assert [int(s) for s in built['dataset_size']] == [0]


def test_a_step_fraction_caps_at_the_ceiling_of_its_share_of_the_full_steps():
  # n = 10, B = 3: 4 batches an epoch, 8 in two; a fraction of 0.3 gives ceil(2.4) = 3 steps.
  built = client_data.training_input_fn(_client(10), epochs=2, batch_size=3)(
      {k: tf.constant(v) for k, v in client_data.task(
          'c', shuffle_seed=1, update_seed=2, step_fraction=0.3).items()})
  assert len(_batches(built['batches'])) == 3
