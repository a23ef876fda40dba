"""Shared types of the datasets package: the loaded-dataset record and its error."""

import dataclasses

import numpy as np
import tensorflow_federated as tff


class DataError(ValueError):
  """Missing/corrupt data or inconsistent data flags; message names the flag or file."""


@dataclasses.dataclass(frozen=True, eq=False)
class FederatedData:
  """A dataset split into clients plus one centralized test set.

  `train` yields `OrderedDict(x=float32 [H, W, C] in [0, 1], y=int32 scalar)` per example for
  image datasets, `x=float32 [D]` (any real values) for feature vectors (synthetic); it reads
  each client from files, or draws it, in the worker, so a TFF round ships only client ids.
  `eq=False` because numpy arrays have no single truth value (instances compare and hash by
  identity).
  """

  train: tff.simulation.datasets.ClientData
  test_x: np.ndarray  # float32 [N, H, W, C] in [0, 1], or [N, D]
  test_y: np.ndarray  # int32 [N]
  num_classes: int

  def __post_init__(self):
    if self.test_x.dtype != np.float32 or self.test_x.ndim not in (2, 4):
      raise DataError(f'test_x must be float32 [N, H, W, C] or [N, D], got {self.test_x.dtype} '
                      f'{self.test_x.shape}')
    if self.test_y.dtype != np.int32 or self.test_y.shape != self.test_x.shape[:1]:
      raise DataError(f'test_y must be int32 [{self.test_x.shape[0]}], got {self.test_y.dtype} '
                      f'{self.test_y.shape}')
