"""Turns a centralized dataset (train + test arrays) into FederatedData with a synthetic split."""

from collections.abc import Mapping
import dataclasses
from typing import Any

import numpy as np

from datasets import base
from datasets import client_files
from datasets import partitions


@dataclasses.dataclass(frozen=True, eq=False)
class Arrays:
  """A centralized dataset. Images are uint8 (0..255) or float32 in [0, 1], [N, H, W, C]."""

  name: str
  train_x: np.ndarray
  train_y: np.ndarray  # int [N]
  test_x: np.ndarray
  test_y: np.ndarray
  num_classes: int


def federate(arrays: Arrays, *, cache_dir: str, partition: str, num_clients: int,
             partition_params: Mapping[str, Any], seed: int) -> base.FederatedData:
  """Splits `arrays.train_*` into clients with partitions.PARTITIONS[partition] and writes them
  to per-client files under `cache_dir`; the test arrays become the centralized test set.

  `partition_params` are the partition's own parameters (partitions.params_from_flags).
  """
  if partition not in partitions.PARTITIONS:
    raise base.DataError(f'--partition={partition!r} is not one of '
                         f'{sorted(partitions.PARTITIONS)} for dataset {arrays.name!r}.')
  parts = partitions.PARTITIONS[partition](
      arrays.train_y, num_clients=num_clients, seed=seed, partition_params=partition_params)
  width = max(4, len(str(num_clients - 1)))
  clients = {f'{i:0{width}d}': (arrays.train_x[idx], arrays.train_y[idx])
             for i, idx in enumerate(parts)}
  spec = {
      'dataset': arrays.name,
      'source_sha256': client_files.content_sha256(arrays.train_x, arrays.train_y),
      'partition': partition,
      'partition_params': partitions.split_params(partition, partition_params),
      **partitions.rule_key(partition),
      'num_clients': int(num_clients),
      'seed': int(seed),
  }
  train = client_files.write_client_files(
      cache_dir=cache_dir, fingerprint=client_files.fingerprint(spec), clients=clients)
  return base.FederatedData(
      train=train,
      test_x=client_files.to_unit_float(arrays.test_x),
      test_y=arrays.test_y.astype(np.int32),
      num_classes=arrays.num_classes)
