"""Tests for datasets.partitions: coverage, sizes, determinism, skew and flag errors."""

import numpy as np
import pytest

from datasets import base
from datasets import partitions


def _labels(num_classes: int = 10, per_class: int = 20, *, seed: int | None = 0) -> np.ndarray:
  """Toy labels; label-sorted when seed is None, shuffled otherwise."""
  labels = np.repeat(np.arange(num_classes), per_class)
  return labels if seed is None else np.random.default_rng(seed).permutation(labels)


def _assert_exact_cover(parts: list[np.ndarray], n: int) -> None:
  for p in parts:
    assert p.dtype == np.int64
  everything = np.concatenate(parts)
  assert len(everything) == n  # No index twice ...
  np.testing.assert_array_equal(np.sort(everything), np.arange(n))  # ... and none missing.


@pytest.mark.parametrize('name', sorted(partitions.PARTITIONS))
def test_every_partition_covers_each_index_once_and_is_deterministic(name):
  labels = _labels()
  call = lambda seed: partitions.PARTITIONS[name](
      labels, num_clients=7, seed=seed, dirichlet_alpha=0.5)
  parts = call(3)
  assert len(parts) == 7 and all(len(p) for p in parts)
  _assert_exact_cover(parts, len(labels))
  for a, b in zip(parts, call(3)):
    np.testing.assert_array_equal(a, b)
  assert any(not np.array_equal(a, b) for a, b in zip(parts, call(4)))


def test_iid_sizes_differ_by_at_most_one():
  parts = partitions.iid(np.zeros(103, dtype=np.int32), num_clients=10, seed=0)
  assert sorted(len(p) for p in parts) == [10] * 7 + [11] * 3
  _assert_exact_cover(parts, 103)


def test_iid_mixes_labels():
  parts = partitions.iid(_labels(seed=None), num_clients=5, seed=0)
  labels = _labels(seed=None)
  assert all(len(np.unique(labels[p])) >= 8 for p in parts)


def test_shards_give_each_client_two_labels_on_a_label_sorted_set():
  labels = _labels(10, 20, seed=None)  # 20 shards of 10: each shard holds one label.
  parts = partitions.shards(labels, num_clients=10, seed=1)
  assert [len(p) for p in parts] == [20] * 10
  assert all(len(np.unique(labels[p])) <= 2 for p in parts)
  _assert_exact_cover(parts, len(labels))


def test_shards_sort_by_label_even_when_the_input_is_shuffled():
  labels = _labels(10, 30, seed=5)
  parts = partitions.shards(labels, num_clients=15, seed=2)
  assert all(len(np.unique(labels[p])) <= 2 for p in parts)
  assert all(len(p) == 20 for p in parts)


def test_shards_per_client_is_respected():
  labels = _labels(10, 30, seed=None)
  parts = partitions.shards(labels, num_clients=10, seed=0, shards_per_client=3)
  assert all(len(p) == 30 for p in parts)
  assert all(len(np.unique(labels[p])) <= 3 for p in parts)


def _mean_max_class_fraction(labels, parts):
  return np.mean([np.bincount(labels[p]).max() / len(p) for p in parts])


def test_dirichlet_small_alpha_skews_labels_far_more_than_large_alpha():
  labels = _labels(10, 100)
  skewed = partitions.dirichlet(labels, num_clients=20, seed=0, alpha=0.05)
  uniform = partitions.dirichlet(labels, num_clients=20, seed=0, alpha=1000.0)
  assert all(len(p) >= 1 for p in skewed + uniform)
  _assert_exact_cover(skewed, len(labels))
  assert _mean_max_class_fraction(labels, skewed) > 0.6
  assert _mean_max_class_fraction(labels, uniform) < 0.25


def test_dirichlet_large_alpha_gives_near_equal_class_shares():
  labels = _labels(4, 1000)
  parts = partitions.dirichlet(labels, num_clients=4, seed=0, alpha=1e4)
  for p in parts:
    np.testing.assert_allclose(np.bincount(labels[p], minlength=4) / 250, 1, atol=0.1)


@pytest.mark.parametrize('name', sorted(partitions.PARTITIONS))
@pytest.mark.parametrize('num_clients', [0, -3, 2.5, 201])
def test_bad_num_clients_names_the_flag(name, num_clients):
  with pytest.raises(base.DataError, match='--num_clients'):
    partitions.PARTITIONS[name](_labels(), num_clients=num_clients, seed=0, dirichlet_alpha=1.0)


def test_shards_need_two_examples_per_client():
  with pytest.raises(base.DataError, match='--num_clients'):
    partitions.shards(_labels(10, 10), num_clients=60, seed=0)


@pytest.mark.parametrize('alpha', [0.0, -1.0, float('nan'), float('inf')])
def test_bad_dirichlet_alpha_names_the_flag(alpha):
  with pytest.raises(base.DataError, match='--dirichlet_alpha'):
    partitions.dirichlet(_labels(), num_clients=5, seed=0, alpha=alpha)


def test_dirichlet_that_cannot_fill_every_client_names_both_flags():
  # 40 examples over 40 clients at a tiny alpha: some client always ends up empty.
  with pytest.raises(base.DataError, match='--dirichlet_alpha.*--num_clients'):
    partitions.dirichlet(_labels(2, 20), num_clients=40, seed=0, alpha=1e-3)


def test_non_integer_labels_are_rejected():
  with pytest.raises(base.DataError, match='labels'):
    partitions.iid(np.zeros((4, 2), dtype=np.int32), num_clients=2, seed=0)


def test_bad_seed_names_the_flag():
  with pytest.raises(base.DataError, match='--seed'):
    partitions.iid(_labels(), num_clients=2, seed=-1)


def test_split_params_name_only_what_changes_the_split():
  assert partitions.split_params('iid', dirichlet_alpha=0.3) == {}
  assert partitions.split_params('dirichlet', dirichlet_alpha=0.3) == {'alpha': 0.3}
  assert set(partitions.PARTITIONS) == {'iid', 'shards', 'dirichlet'}
