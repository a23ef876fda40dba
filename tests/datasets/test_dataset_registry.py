"""Tests for datasets.registry and the digits loader: flag checks and split correctness."""

import os

import numpy as np
import pytest
import sklearn.datasets
import sklearn.model_selection

from datasets import base
from datasets import client_files
from datasets import digits
from datasets import partitions
from datasets import registry

# The flags the partitions read, as the settings give them by default.
_PARTITION_FLAGS = {'dirichlet_alpha': 0.5, 'labels_per_client': 2}


def _load(name='digits', *, cache_dir, **overrides):
  flags = dict(data_dir=None, partition='iid', num_clients=10, seed=0, only_digits=False)
  flags.update(overrides)
  if 'partition_params' not in flags:
    flags['partition_params'] = partitions.params_from_flags(flags['partition'],
                                                             _PARTITION_FLAGS)
  return registry.load(name, cache_dir=str(cache_dir), **flags)


def _reference_digits_split():
  """The contracted split, recomputed independently: stratified 20% test, seed 0."""
  bunch = sklearn.datasets.load_digits()
  x = (bunch.images / 16.0).astype(np.float32)[..., None]
  train, test = sklearn.model_selection.train_test_split(
      np.arange(len(bunch.target)), test_size=0.2, stratify=bunch.target, random_state=0)
  return x, bunch.target, np.sort(train), np.sort(test)


def _all_client_examples(data):
  xs, ys = [], []
  for client_id in data.train.client_ids:
    for batch in data.train.create_tf_dataset_for_client(client_id).batch(10_000):
      xs.append(batch['x'].numpy())
      ys.append(batch['y'].numpy())
  return np.concatenate(xs), np.concatenate(ys)


def _row_multiset(x, y):
  rows = np.concatenate([x.reshape(len(x), -1), y[:, None].astype(np.float32)], axis=1)
  return rows[np.lexsort(rows.T[::-1])]


@pytest.mark.parametrize('partition', ['iid', 'shards', 'dirichlet', 'label_quantity'])
def test_digits_clients_cover_exactly_the_train_split(tmp_path, partition):
  data = _load(partition=partition, cache_dir=tmp_path)
  x, y, train_idx, test_idx = _reference_digits_split()
  assert data.train.client_ids == [f'{i:04d}' for i in range(10)]
  got_x, got_y = _all_client_examples(data)
  assert got_x.dtype == np.float32 and 0.0 <= got_x.min() and got_x.max() <= 1.0
  np.testing.assert_array_equal(_row_multiset(got_x, got_y),
                                _row_multiset(x[train_idx], y[train_idx]))
  np.testing.assert_array_equal(data.test_x, x[test_idx])
  np.testing.assert_array_equal(data.test_y, y[test_idx])
  assert not set(train_idx) & set(test_idx) and len(train_idx) + len(test_idx) == 1797
  assert data.test_x.shape == (360, 8, 8, 1) and data.num_classes == 10


def test_digits_test_set_does_not_depend_on_the_run_seed(tmp_path):
  a = _load(seed=1, cache_dir=tmp_path)
  b = _load(seed=2, cache_dir=tmp_path)
  np.testing.assert_array_equal(a.test_x, b.test_x)
  first = lambda d: [int(e['y']) for e in d.train.create_tf_dataset_for_client('0000')]
  assert first(a) != first(b)  # ... while the client split does.


def test_unknown_dataset_names_the_flag_and_choices(tmp_path):
  with pytest.raises(base.DataError, match=r"--dataset.*\['digits', 'emnist'"):
    _load('cifar', cache_dir=tmp_path)


@pytest.mark.parametrize('name, partition', [
    ('digits', 'natural'), ('mnist', 'natural'), ('emnist', 'iid'), ('femnist_leaf', 'shards'),
    ('digits', 'pathological'),
])
def test_partition_that_does_not_fit_the_dataset_names_the_flag(tmp_path, name, partition):
  # Raised before any data is touched: the data_dir does not exist.
  with pytest.raises(base.DataError, match='--partition'):
    _load(name, partition=partition, data_dir=str(tmp_path / 'missing'), cache_dir=tmp_path)


@pytest.mark.parametrize('overrides, flag', [
    ({'num_clients': 0}, '--num_clients'),
    ({'num_clients': 5000}, '--num_clients'),
    ({'partition': 'dirichlet', 'partition_params': {'alpha': 0.0}}, '--dirichlet_alpha'),
    ({'partition': 'label_quantity', 'partition_params': {'labels_per_client': 11}},
     '--labels_per_client'),
    ({'partition': 'label_quantity', 'partition_params': {'labels_per_client': 0}},
     '--labels_per_client'),
    ({'partition': 'label_quantity', 'partition_params': {}}, '--labels_per_client'),
])
def test_bad_partition_flags_name_the_flag(tmp_path, overrides, flag):
  with pytest.raises(base.DataError, match=flag):
    _load(cache_dir=tmp_path, **overrides)


# The cache specs as they were before partition_params existed: their fingerprints name the
# cache directories already on disk, which must be found again.
_SPECS_BEFORE = {
    'iid': ({}, {}),
    'shards': ({'shards_per_client': 2}, {'shards_per_client': 2}),
    'dirichlet': ({'alpha': 1}, {'alpha': 1.0}),
}


def _fingerprint(partition, fingerprinted, **extra):
  arrays = digits.load_arrays()
  return client_files.fingerprint({
      'dataset': 'digits',
      'source_sha256': client_files.content_sha256(arrays.train_x, arrays.train_y),
      'partition': partition,
      'partition_params': fingerprinted,
      'num_clients': 10,
      'seed': 3,
      **extra,
  })


@pytest.mark.parametrize('partition', ['iid', 'shards'])
def test_cache_directories_of_the_older_partitions_keep_their_names(tmp_path, partition):
  params, fingerprinted = _SPECS_BEFORE[partition]
  _load(partition=partition, partition_params=params, seed=3, cache_dir=tmp_path)
  assert _fingerprint(partition, fingerprinted) in os.listdir(tmp_path)


def test_dirichlet_caches_of_the_former_rule_are_not_reused(tmp_path):
  # Its split follows NIID-Bench's rule since rule version 2: the key holds the version.
  params, fingerprinted = _SPECS_BEFORE['dirichlet']
  _load(partition='dirichlet', partition_params=params, seed=3, cache_dir=tmp_path)
  names = os.listdir(tmp_path)
  assert _fingerprint('dirichlet', fingerprinted) not in names
  assert _fingerprint('dirichlet', fingerprinted, partition_version=2) in names


def test_registry_entries_and_class_counts():
  assert set(registry.DATASETS) == {'digits', 'mnist', 'emnist', 'femnist_leaf', 'synthetic'}
  models = {name: info.default_model for name, info in registry.DATASETS.items()}
  assert models == {'digits': 'digits_mlp', 'mnist': 'mnist_2nn', 'emnist': 'emnist_cnn',
                    'femnist_leaf': 'emnist_cnn', 'synthetic': 'logistic'}
  assert [n for n, i in registry.DATASETS.items() if i.natural_split] == ['emnist',
                                                                          'femnist_leaf',
                                                                          'synthetic']
  assert [n for n, i in registry.DATASETS.items() if i.generated] == ['synthetic']
  assert not registry.DATASETS['digits'].needs_data_dir
  assert registry.DATASETS['digits'].input_shape == (8, 8, 1)
  assert registry.num_classes('emnist', only_digits=True) == 10
  assert registry.num_classes('femnist_leaf', only_digits=False) == 62
  assert registry.num_classes('mnist', only_digits=False) == 10
  with pytest.raises(base.DataError, match='--dataset'):
    registry.num_classes('nope', only_digits=False)
