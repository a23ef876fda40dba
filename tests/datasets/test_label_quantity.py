"""Tests for datasets.partitions.label_quantity, NIID-Bench's "#C=k" label-quantity skew."""

import numpy as np
import pytest

from datasets import base
from datasets import partitions


def _labels(num_classes: int = 10, per_class: int = 20, *, seed: int = 0) -> np.ndarray:
  """Toy labels: `per_class` of each class, shuffled."""
  return np.random.default_rng(seed).permutation(np.repeat(np.arange(num_classes), per_class))


def _assert_exact_cover(parts: list[np.ndarray], n: int) -> None:
  assert all(p.dtype == np.int64 for p in parts)
  np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(n))


def _label_sets(labels, parts):
  return [set(np.unique(labels[p]).tolist()) for p in parts]


@pytest.mark.parametrize('k', [1, 2, 3, 10])
@pytest.mark.parametrize('num_clients', [10, 13, 30])
def test_label_quantity_gives_each_client_exactly_k_labels_split_equally(k, num_clients):
  labels = _labels(10, 60, seed=1)
  parts = partitions.label_quantity(labels, num_clients=num_clients, seed=2, labels_per_client=k)
  held = _label_sets(labels, parts)
  assert [len(h) for h in held] == [k] * num_clients
  assert all(i % 10 in h for i, h in enumerate(held))  # Client i's first label is i % K.
  _assert_exact_cover(parts, len(labels))  # num_clients >= K: every label is held.
  for label in range(10):
    shares = [np.sum(labels[p] == label) for p, h in zip(parts, held) if label in h]
    assert sum(shares) == 60 and max(shares) - min(shares) <= 1


def test_label_quantity_with_fewer_clients_than_labels_leaves_unheld_labels_unused():
  labels = _labels(10, 20, seed=0)
  parts = partitions.label_quantity(labels, num_clients=3, seed=0, labels_per_client=2)
  held = set().union(*_label_sets(labels, parts))
  assert {0, 1, 2} <= held and len(held) < 10
  used = np.concatenate(parts)
  assert len(used) == len(set(used.tolist()))  # No example twice ...
  np.testing.assert_array_equal(np.sort(used), np.flatnonzero(np.isin(labels, list(held))))


def test_label_quantity_uses_the_classes_present_whatever_their_values():
  labels = np.random.default_rng(0).permutation(np.repeat([3, 7, 42], 10)).astype(np.int32)
  parts = partitions.label_quantity(labels, num_clients=3, seed=1, labels_per_client=2)
  held = _label_sets(labels, parts)
  assert [len(h) for h in held] == [2] * 3
  assert 3 in held[0] and 7 in held[1] and 42 in held[2]  # Client i: the i-th class present.
  with pytest.raises(base.DataError, match=r'--labels_per_client.*\[1, 3\]'):
    partitions.label_quantity(labels, num_clients=3, seed=1, labels_per_client=4)


def test_label_quantity_is_deterministic_in_the_seed():
  labels = _labels(10, 30, seed=3)
  split = lambda seed: partitions.label_quantity(labels, num_clients=20, seed=seed,
                                                 labels_per_client=3)
  a, b, c = split(5), split(5), split(6)
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x, y)
  assert _label_sets(labels, a) != _label_sets(labels, c)
  assert any(not np.array_equal(x, y) for x, y in zip(a, c))


@pytest.mark.parametrize('k', [0, -1, 11, 2.0, True, None])
def test_label_quantity_out_of_range_names_the_flag(k):
  with pytest.raises(base.DataError, match='--labels_per_client'):
    partitions.label_quantity(_labels(), num_clients=10, seed=0, labels_per_client=k)


def test_label_quantity_that_leaves_a_client_empty_names_both_flags():
  # Label 0 has 2 examples for its 3 holders (clients 0, 2, 4): one of them gets nothing.
  labels = np.array([0, 0] + [1] * 8, dtype=np.int32)
  with pytest.raises(base.DataError, match='--labels_per_client=1 with --num_clients=6'):
    partitions.label_quantity(labels, num_clients=6, seed=0, labels_per_client=1)
