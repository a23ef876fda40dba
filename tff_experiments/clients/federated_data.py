"""The datasets package's loaders as a registry (`--dataset`), loaded from the data settings."""

from datasets import base as datasets_base
from datasets import registry as datasets_registry
from tff_experiments.core import registry

DATASETS: registry.Registry[datasets_registry.DatasetInfo] = registry.Registry(
    'dataset', flag='dataset', entries=datasets_registry.DATASETS)
NATURAL = datasets_registry.NATURAL


def partition_choices(dataset: str) -> list[str]:
  """The `--partition` values `dataset` accepts (natural for per-writer datasets)."""
  return datasets_registry.partition_choices(dataset)


def load(data_settings) -> datasets_base.FederatedData:
  """Loads the federated dataset of `settings.DataSettings` (raises datasets.base.DataError).

  The client split is drawn from `--split_seed`, never from `--seed`, so repetitions over
  `--seed` keep one split.
  """
  return datasets_registry.load(
      data_settings.dataset, data_dir=data_settings.data_dir, cache_dir=data_settings.cache_dir,
      partition=data_settings.partition, num_clients=data_settings.num_clients,
      dirichlet_alpha=data_settings.dirichlet_alpha, seed=data_settings.split_seed,
      only_digits=data_settings.only_digits)
