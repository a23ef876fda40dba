"""The datasets package's loaders as a registry (`--dataset`), loaded from the data settings."""

import dataclasses

from datasets import base as datasets_base
from datasets import partitions
from datasets import registry as datasets_registry
from tff_experiments.core import registry

DATASETS: registry.Registry[datasets_registry.DatasetInfo] = registry.Registry(
    'dataset', flag='dataset', entries=datasets_registry.DATASETS)
NATURAL = datasets_registry.NATURAL


def partition_choices(dataset: str) -> list[str]:
  """The `--partition` values `dataset` accepts (natural for per-writer datasets)."""
  return datasets_registry.partition_choices(dataset)


def all_partitions() -> list[str]:
  """Every `--partition` value some dataset accepts (`partition_choices` says which fit which)."""
  return sorted(partitions.PARTITIONS) + [NATURAL]


def load(data_settings) -> datasets_base.FederatedData:
  """Loads the federated dataset of `data_settings.DataSettings` (raises datasets.base.DataError).

  The client split is drawn from `--split_seed`, never from `--seed`, so repetitions over
  `--seed` keep one split. The partition's own parameters come from the settings its
  `partitions.PARTITIONS` entry names (e.g. --dirichlet_alpha for dirichlet; DataSettings'
  field names are its flag names), so a new partition parameter is a setting plus that entry,
  not a change here; a dataset's own parameters likewise come from its registry entry's
  `params` (e.g. --synthetic_alpha).
  """
  flags = dataclasses.asdict(data_settings)
  return datasets_registry.load(
      data_settings.dataset, data_dir=data_settings.data_dir, cache_dir=data_settings.cache_dir,
      partition=data_settings.partition, num_clients=data_settings.num_clients,
      partition_params=partitions.params_from_flags(data_settings.partition, flags),
      seed=data_settings.split_seed, only_digits=data_settings.only_digits,
      dataset_params=datasets_registry.params_from_flags(data_settings.dataset, flags))
