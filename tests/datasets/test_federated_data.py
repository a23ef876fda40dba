"""The data settings to partitions seam: settings -> partition_params -> split, and hparams."""

import dataclasses

import numpy as np
import pytest

from datasets import partitions
from tff_experiments import settings
from tff_experiments.clients import data_settings
from tff_experiments.clients import federated_data
from tff_experiments.core import config


def _data_settings(tmp_path, given=None, **values):
  return settings.from_flat({'cache_dir': str(tmp_path), 'num_clients': 10,
                             'clients_per_round': 3, **values}, given=given).data


def _labels_of(data, client_id):
  return {int(e['y']) for e in data.train.create_tf_dataset_for_client(client_id)}


def test_every_partition_parameter_flag_is_a_data_setting():
  names = {f.name for f in dataclasses.fields(data_settings.DataSettings)}
  flags = {p.flag for entry in partitions.PARTITIONS.values() for p in entry.params.values()}
  assert flags - {None} <= names
  assert {'dirichlet_alpha', 'labels_per_client'} <= flags


@pytest.mark.parametrize('k', [1, 3])
def test_digits_with_label_quantity_loads_k_labels_per_client(tmp_path, k):
  data = federated_data.load(_data_settings(tmp_path, partition='label_quantity',
                                            labels_per_client=k))
  assert data.train.client_ids == [f'{i:04d}' for i in range(10)]
  held = [_labels_of(data, c) for c in data.train.client_ids]
  assert [len(h) for h in held] == [k] * 10
  assert all(i in h for i, h in enumerate(held))
  sizes = [len(list(data.train.create_tf_dataset_for_client(c))) for c in data.train.client_ids]
  assert sum(sizes) == 1437  # Every train example (10 clients hold all 10 labels).
  assert np.isin(data.test_y, np.arange(10)).all()


def test_label_quantity_split_follows_labels_per_client_and_split_seed_only(tmp_path):
  # given=(): an inactive setting (dirichlet_alpha here) is taken, to show it changes nothing.
  load = lambda **v: [_labels_of(d, c) for d in [federated_data.load(_data_settings(
      tmp_path, given=(), partition='label_quantity', **v))] for c in d.train.client_ids]
  assert load(labels_per_client=2) == load(labels_per_client=2, seed=5)
  assert load(labels_per_client=2) != load(labels_per_client=2, split_seed=1)
  assert load(labels_per_client=2, dirichlet_alpha=0.1) == load(labels_per_client=2)


@pytest.mark.parametrize('partition', ['iid', 'shards', 'dirichlet', 'label_quantity'])
def test_hparams_hold_labels_per_client_only_for_label_quantity(partition):
  active = config.active_flat(settings.from_flat({'partition': partition,
                                                   'labels_per_client': 3}, given=()))
  assert ('labels_per_client' in active) == (partition == 'label_quantity')
  assert ('dirichlet_alpha' in active) == (partition == 'dirichlet')
  if partition == 'label_quantity':
    assert active['labels_per_client'] == 3


def test_natural_datasets_record_no_labels_per_client():
  assert 'labels_per_client' not in config.active_flat(
      settings.from_flat({'dataset': 'femnist_leaf'}))


@pytest.mark.parametrize('values', [
    {'partition': 'label_quantity', 'labels_per_client': 0},
    {'partition': 'label_quantity', 'labels_per_client': 11},
    {'dataset': 'mnist', 'partition': 'label_quantity', 'labels_per_client': 11},
])
def test_bad_labels_per_client_is_a_config_error_naming_the_flag(values):
  with pytest.raises(config.ConfigError, match='--labels_per_client'):
    settings.from_flat(values)


def test_labels_per_client_beyond_the_classes_is_fine_for_other_partitions():
  values = {'partition': 'iid', 'labels_per_client': 50}  # Not checked where it does not apply.
  assert settings.from_flat(values, given=()).data.partition == 'iid'
