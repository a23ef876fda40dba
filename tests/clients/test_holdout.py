"""Held-out parts of clients: seeded, disjoint, covering, the right size; the same everywhere."""

import collections

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_federated as tff

from tff_experiments.clients import client_data
from tff_experiments.clients import holdout


def _examples(n):
  return collections.OrderedDict(x=tf.zeros((n, 2, 2, 1), tf.float32),
                                 y=tf.range(n, dtype=tf.int32))


def _labels(dataset, batched=False):
  values = [e['y'].numpy() for e in dataset]
  return sorted(np.concatenate(values).tolist() if batched and values else
                [int(v) for v in values])


def _split(n, seed, fraction):
  train, held_out = holdout.split(_examples(n), seed=tf.constant(seed, tf.int64),
                                  fraction=fraction)
  assert train['x'].shape[0] == train['y'].shape[0]
  return sorted(train['y'].numpy().tolist()), sorted(held_out['y'].numpy().tolist())


@pytest.mark.parametrize('n', [1, 2, 3, 10, 37, 200])
@pytest.mark.parametrize('fraction', [0.2, 0.5, 0.9])
def test_split_is_disjoint_covers_the_client_and_holds_out_the_fraction(n, fraction):
  train, held_out = _split(n, seed=holdout.client_seed(0, 'c1'), fraction=fraction)
  assert not set(train) & set(held_out) and sorted(train + held_out) == list(range(n))
  assert len(train) >= 1  # Every client keeps a training example.
  assert len(held_out) == min(round(fraction * n), n - 1)
  assert abs(len(held_out) - fraction * n) <= 0.5 or len(train) == 1


def test_split_is_seeded_by_split_seed_and_client():
  seed = holdout.client_seed(3, 'c1')
  assert seed == holdout.client_seed(3, 'c1')
  assert len({seed, holdout.client_seed(4, 'c1'), holdout.client_seed(3, 'c2')}) == 3
  once = _split(50, seed, 0.2)
  assert _split(50, seed, 0.2) == once
  assert _split(50, holdout.client_seed(4, 'c1'), 0.2) != once
  assert once[1] != list(range(40, 50)) and once[1] != list(range(10))  # Not by position.


@pytest.mark.usefixtures('tff_worker')
def test_training_sees_only_the_training_part_that_personalization_also_uses():
  data = tff.simulation.datasets.TestClientData(
      {'a': collections.OrderedDict(x=np.zeros((20, 2, 2, 1), np.float32),
                                    y=np.arange(20, dtype=np.int32))})
  task = client_data.task('a', shuffle_seed=1, update_seed=2, holdout_seed=holdout.client_seed(0, 'a'))
  trained = client_data.build_dataset_computation(
      data, epochs=1, batch_size=3, holdout_fraction=0.25)(task)
  parts = client_data.build_split_computation(
      data, epochs=1, batch_size=3, holdout_fraction=0.25, eval_batch_size=100)(task)
  train = _labels(trained['batches'], batched=True)
  held_out = _labels(parts['held_out'], batched=True)
  assert len(held_out) == 5 and sorted(train + held_out) == list(range(20))
  assert _labels(parts['train']['batches'], batched=True) == train
  assert [int(n) for n in trained['dataset_size']] == [15]
  everything = client_data.build_dataset_computation(data, epochs=1, batch_size=3)(task)
  assert _labels(everything['batches'], batched=True) == list(range(20))
