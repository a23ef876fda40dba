"""The dataset registry: name -> loader and facts; `load` validates the data flags and loads.

Adding a dataset = one module with a `load(*, data_dir, cache_dir, partition, num_clients,
partition_params, seed, only_digits)` function plus one DATASETS entry. A dataset's own
parameters (e.g. synthetic's alpha) are further keyword arguments of its loader, each named
in its entry's `params` with the flag that sets it.
"""

from collections.abc import Callable, Mapping
import dataclasses
from typing import Any

from datasets import base
from datasets import digits
from datasets import emnist
from datasets import femnist_leaf
from datasets import mnist
from datasets import partitions
from datasets import synthetic

# The --partition value of datasets whose clients are given by the data (writers).
NATURAL = 'natural'


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  """How to load a dataset and what models need to know about it."""

  loader: Callable[..., base.FederatedData]
  natural_split: bool  # True: clients are writers; --partition must be 'natural'.
  default_model: str
  input_shape: tuple[int, ...]  # [H, W, C] of images, [D] of feature vectors.
  needs_data_dir: bool  # Reads source files from --data_dir (None -> a default cache if any).
  num_classes: int  # All classes; only_digits datasets drop to 10 (see num_classes()).
  # Clients drawn by a seeded generator: --num_clients of them, from --split_seed (the split
  # is still natural: each client has its own distribution).
  generated: bool = False
  # The loader's own keyword arguments -> the flags that set them (see params_from_flags).
  params: Mapping[str, str] = dataclasses.field(default_factory=dict)


DATASETS: dict[str, DatasetInfo] = {
    'digits': DatasetInfo(loader=digits.load, natural_split=False, default_model='digits_mlp',
                          input_shape=(8, 8, 1), needs_data_dir=False, num_classes=10),
    'mnist': DatasetInfo(loader=mnist.load, natural_split=False, default_model='mnist_2nn',
                         input_shape=(28, 28, 1), needs_data_dir=True, num_classes=10),
    'emnist': DatasetInfo(loader=emnist.load, natural_split=True, default_model='emnist_cnn',
                          input_shape=(28, 28, 1), needs_data_dir=True,
                          num_classes=emnist.NUM_CLASSES[False]),
    'femnist_leaf': DatasetInfo(loader=femnist_leaf.load, natural_split=True,
                                default_model='emnist_cnn', input_shape=(28, 28, 1),
                                needs_data_dir=True, num_classes=femnist_leaf.NUM_CLASSES),
    'synthetic': DatasetInfo(
        loader=synthetic.load, natural_split=True, default_model='logistic',
        input_shape=(synthetic.NUM_FEATURES,), needs_data_dir=False,
        num_classes=synthetic.NUM_CLASSES, generated=True,
        params={'alpha': 'synthetic_alpha', 'beta': 'synthetic_beta', 'iid': 'synthetic_iid',
                'max_examples': 'synthetic_max_examples'}),
}


def info(name: str) -> DatasetInfo:
  """The registry entry for `name`; DataError naming --dataset and the choices if unknown."""
  if name not in DATASETS:
    raise base.DataError(f'--dataset={name!r} is unknown; choose one of {sorted(DATASETS)}.')
  return DATASETS[name]


def partition_choices(name: str) -> list[str]:
  """The --partition values dataset `name` accepts."""
  return [NATURAL] if info(name).natural_split else sorted(partitions.PARTITIONS)


def params_from_flags(name: str, flags: Mapping[str, Any]) -> dict[str, Any]:
  """The `dataset_params` of dataset `name`, read from flag name -> value (`flags`)."""
  return {param: flags[flag] for param, flag in info(name).params.items()}


def load(name: str, *, data_dir: str | None, cache_dir: str, partition: str, num_clients: int,
         partition_params: Mapping[str, Any], seed: int, only_digits: bool,
         dataset_params: Mapping[str, Any] | None = None) -> base.FederatedData:
  """Loads dataset `name` split into clients.

  For natural splits `partition` must be 'natural' (and num_clients and partition_params are
  ignored, except that generated datasets draw num_clients clients from `seed`); for
  digits/mnist it must be a key of partitions.PARTITIONS, and `partition_params` its own
  parameters (e.g. {'alpha': 0.5} for dirichlet; see partitions.params_from_flags).
  `dataset_params` are exactly the names of the entry's `params` (see params_from_flags).
  """
  choices = partition_choices(name)
  if partition not in choices:
    kind = ('draws its clients, each from its own distribution' if info(name).generated
            else 'has a natural per-writer client split' if info(name).natural_split
            else 'has no natural client split')
    raise base.DataError(f'--partition={partition!r} does not fit --dataset={name!r}, which '
                         f'{kind}; choose one of {choices}.')
  dataset_params = dict(dataset_params or {})
  expected = info(name).params
  if sorted(dataset_params) != sorted(expected):
    raise base.DataError(
        f'--dataset={name!r} takes parameters {sorted(expected)} (flags '
        f'{[f"--{flag}" for flag in expected.values()]}), got {sorted(dataset_params)}.')
  return info(name).loader(data_dir=data_dir, cache_dir=cache_dir, partition=partition,
                           num_clients=num_clients, partition_params=partition_params, seed=seed,
                           only_digits=only_digits, **dataset_params)


def num_classes(name: str, *, only_digits: bool) -> int:
  """Number of label classes of `name` (10 with only_digits; digits-only datasets always 10)."""
  return min(info(name).num_classes, 10) if only_digits else info(name).num_classes
