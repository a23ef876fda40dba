"""What every client split checks of its arguments, and the form of its result."""

import numbers

import numpy as np

from datasets import base


def check_common(labels: np.ndarray, *, num_clients: int, seed: int) -> None:
  """Validates what every partition needs; raises DataError naming the flag."""
  if not isinstance(labels, np.ndarray) or labels.ndim != 1 or not np.issubdtype(
      labels.dtype, np.integer):
    raise base.DataError('labels must be a 1-D integer numpy array, got '
                         f'{getattr(labels, "dtype", type(labels))} {np.shape(labels)}')
  if (not isinstance(num_clients, numbers.Integral) or isinstance(num_clients, bool)
      or num_clients < 1):
    raise base.DataError(f'--num_clients must be an integer >= 1, got {num_clients!r}')
  if num_clients > len(labels):
    raise base.DataError(
        f'--num_clients={num_clients} exceeds the {len(labels)} examples to split.')
  if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or seed < 0:
    raise base.DataError(f'--seed must be a non-negative integer, got {seed!r}')


def sorted_parts(parts: list[np.ndarray]) -> list[np.ndarray]:
  """Sorts each client's indices (stable file contents) and fixes the dtype to int64."""
  return [np.sort(p).astype(np.int64) for p in parts]
