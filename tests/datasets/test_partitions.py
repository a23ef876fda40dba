"""Tests for datasets.partitions: coverage, sizes, determinism, skew and flag errors."""

import json
import re

import numpy as np
import pytest

from datasets import base
from datasets import partitions


def _labels(num_classes: int = 10, per_class: int = 20, *, seed: int | None = 0) -> np.ndarray:
  """Toy labels; label-sorted when seed is None, shuffled otherwise."""
  labels = np.repeat(np.arange(num_classes), per_class)
  return labels if seed is None else np.random.default_rng(seed).permutation(labels)


# Parameters of each registered partition for the tests that run all of them. label_quantity
# holds every one of the 10 labels here, so that it too covers every index with 7 clients.
_PARAMS = {'iid': {}, 'shards': {'shards_per_client': 2}, 'dirichlet': {'alpha': 0.5},
           'label_quantity': {'labels_per_client': 10}}


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
      labels, num_clients=7, seed=seed, partition_params=_PARAMS[name])
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


@pytest.mark.parametrize('name', sorted(partitions.PARTITIONS))
@pytest.mark.parametrize('num_clients', [0, -3, 2.5, 201])
def test_bad_num_clients_names_the_flag(name, num_clients):
  with pytest.raises(base.DataError, match='--num_clients'):
    partitions.PARTITIONS[name](_labels(), num_clients=num_clients, seed=0,
                                partition_params=_PARAMS[name])


def test_shards_need_two_examples_per_client():
  with pytest.raises(base.DataError, match='--num_clients'):
    partitions.shards(_labels(10, 10), num_clients=60, seed=0)


def test_non_integer_labels_are_rejected():
  with pytest.raises(base.DataError, match='labels'):
    partitions.iid(np.zeros((4, 2), dtype=np.int32), num_clients=2, seed=0)


def test_bad_seed_names_the_flag():
  with pytest.raises(base.DataError, match='--seed'):
    partitions.iid(_labels(), num_clients=2, seed=-1)


def test_split_params_name_only_what_changes_the_split():
  assert partitions.split_params('iid', {}) == {}
  assert partitions.split_params('dirichlet', {'alpha': 0.3}) == {'alpha': 0.3}
  assert set(partitions.PARTITIONS) == {'iid', 'shards', 'dirichlet', 'label_quantity'}


def test_split_params_of_the_older_partitions_are_unchanged_as_json():
  # They are hashed into cache fingerprints: existing caches must keep their names.
  as_json = lambda name, params: json.dumps(partitions.split_params(name, params),
                                            sort_keys=True)
  assert as_json('iid', {}) == '{}'
  assert as_json('shards', {'shards_per_client': 2}) == '{"shards_per_client": 2}'
  assert as_json('dirichlet', {'alpha': 1}) == '{"alpha": 1.0}'  # As float, as before.
  assert as_json('label_quantity', {'labels_per_client': np.int64(3)}) == (
      '{"labels_per_client": 3}')


def test_params_from_flags_reads_each_partitions_own_settings():
  flags = {'dirichlet_alpha': 0.3, 'labels_per_client': 4, 'num_clients': 10}
  assert partitions.params_from_flags('iid', flags) == {}
  assert partitions.params_from_flags('shards', flags) == {'shards_per_client': 2}
  assert partitions.params_from_flags('dirichlet', flags) == {'alpha': 0.3}
  assert partitions.params_from_flags('label_quantity', flags) == {'labels_per_client': 4}
  assert partitions.params_from_flags('natural', flags) == {}


@pytest.mark.parametrize('name, params', [
    ('iid', {'alpha': 0.5}), ('dirichlet', {}), ('label_quantity', {'alpha': 2}),
])
def test_partition_params_must_be_exactly_the_partitions_own(name, params):
  with pytest.raises(base.DataError,
                     match=re.escape(f'takes parameters {sorted(_PARAMS[name])}')):
    partitions.PARTITIONS[name](_labels(), num_clients=5, seed=0, partition_params=params)


def test_rule_key_names_a_changed_rule_and_nothing_else():
  # Cache fingerprints hold it: version-1 rules keep their old names, dirichlet's changed.
  assert partitions.rule_key('iid') == {} and partitions.rule_key('shards') == {}
  assert partitions.rule_key('dirichlet') == {'partition_version': 2}
