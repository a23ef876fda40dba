"""scikit-learn's bundled 8x8 digits (1,797 images, no download): the embedded default dataset.

A fixed stratified 20% test split (seed 0, independent of the run seed, so runs with different
seeds are scored on one test set); the remaining 80% is partitioned into clients.
"""

from collections.abc import Mapping
from typing import Any

import numpy as np
import sklearn.datasets
import sklearn.model_selection

from datasets import base
from datasets import centralized

TEST_FRACTION = 0.2
SPLIT_SEED = 0
# Pixel values in load_digits are counts 0..16 (of 4x4 blocks); dividing maps them to [0, 1].
_MAX_PIXEL = 16.0


def load_arrays() -> centralized.Arrays:
  """The digits as float32 [N, 8, 8, 1] in [0, 1], split into fixed train and test parts."""
  bunch = sklearn.datasets.load_digits()
  x = (bunch.images.astype(np.float32) / np.float32(_MAX_PIXEL))[..., np.newaxis]
  y = bunch.target.astype(np.int32)
  train_idx, test_idx = sklearn.model_selection.train_test_split(
      np.arange(len(y)), test_size=TEST_FRACTION, stratify=y, random_state=SPLIT_SEED)
  train_idx, test_idx = np.sort(train_idx), np.sort(test_idx)
  return centralized.Arrays(name='digits', train_x=x[train_idx], train_y=y[train_idx],
                            test_x=x[test_idx], test_y=y[test_idx], num_classes=10)


def load(*, data_dir: str | None, cache_dir: str, partition: str, num_clients: int,
         partition_params: Mapping[str, Any], seed: int,
         only_digits: bool) -> base.FederatedData:
  """Registry loader: digits split into clients (data_dir and only_digits are unused)."""
  del data_dir, only_digits
  return centralized.federate(load_arrays(), cache_dir=cache_dir, partition=partition,
                              num_clients=num_clients, partition_params=partition_params,
                              seed=seed)
