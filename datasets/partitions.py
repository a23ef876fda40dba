"""Synthetic client splits of a centralized dataset: iid, shards, dirichlet label skew.

Pure numpy and deterministic in `seed`. Each function returns one sorted int64 array of example
indices per client; every index lands in exactly one client.
"""

from collections.abc import Callable
import numbers

import numpy as np

from datasets import base

# Bound on Dirichlet redraws before giving up on "every client gets an example".
_MAX_DIRICHLET_DRAWS = 200
# Shards per client in the registered 'shards' partition (McMahan et al. 2017 use 2).
_SHARDS_PER_CLIENT = 2


def iid(labels: np.ndarray, *, num_clients: int, seed: int) -> list[np.ndarray]:
  """Shuffles all examples and deals them into equal parts (sizes differ by at most 1)."""
  _check_common(labels, num_clients=num_clients, seed=seed)
  rng = np.random.default_rng(seed)
  order = rng.permutation(len(labels))
  return _sorted_parts(np.array_split(order, num_clients))


def shards(labels: np.ndarray, *, num_clients: int, seed: int,
           shards_per_client: int = 2) -> list[np.ndarray]:
  """Pathological non-IID split of McMahan et al. (2017): a few label-sorted shards per client.

  Examples are shuffled, stably sorted by label, cut into `shards_per_client * num_clients`
  equal shards (sizes differ by at most 1), and each client gets `shards_per_client` random ones.
  """
  _check_common(labels, num_clients=num_clients, seed=seed)
  if not isinstance(shards_per_client, numbers.Integral) or shards_per_client < 1:
    raise base.DataError(f'shards_per_client must be a positive integer, got {shards_per_client!r}')
  num_shards = num_clients * shards_per_client
  if num_shards > len(labels):
    raise base.DataError(
        f'--num_clients={num_clients} with {shards_per_client} shards per client needs at least '
        f'{num_shards} examples, but there are {len(labels)}.')
  rng = np.random.default_rng(seed)
  shuffled = rng.permutation(len(labels))
  by_label = shuffled[np.argsort(labels[shuffled], kind='stable')]
  pieces = np.array_split(by_label, num_shards)
  owners = rng.permutation(num_shards).reshape(num_clients, shards_per_client)
  return _sorted_parts([np.concatenate([pieces[s] for s in row]) for row in owners])


def dirichlet(labels: np.ndarray, *, num_clients: int, seed: int,
              alpha: float) -> list[np.ndarray]:
  """Label-skewed split of Hsu et al. (2019): each class is divided by proportions ~ Dir(alpha).

  Smaller `alpha` means more skew. The whole draw is repeated (a bounded number of times)
  until every client holds at least one example.
  """
  _check_common(labels, num_clients=num_clients, seed=seed)
  if (not isinstance(alpha, numbers.Real) or isinstance(alpha, bool) or not np.isfinite(alpha)
      or alpha <= 0):
    raise base.DataError(f'--dirichlet_alpha must be a finite number > 0, got {alpha!r}')
  rng = np.random.default_rng(seed)
  class_indices = [np.flatnonzero(labels == c) for c in np.unique(labels)]
  for _ in range(_MAX_DIRICHLET_DRAWS):
    parts = [[] for _ in range(num_clients)]
    for indices in class_indices:
      proportions = rng.dirichlet(np.full(num_clients, float(alpha)))
      if not np.all(np.isfinite(proportions)):  # Underflow at tiny alpha: draw again.
        break
      cuts = (np.cumsum(proportions)[:-1] * len(indices)).astype(np.int64)
      for client, piece in enumerate(np.split(rng.permutation(indices), cuts)):
        parts[client].append(piece)
    else:
      merged = [np.concatenate(p) for p in parts]
      if min(len(p) for p in merged) >= 1:
        return _sorted_parts(merged)
  raise base.DataError(
      f'--dirichlet_alpha={alpha} with --num_clients={num_clients} left some client without '
      f'examples in {_MAX_DIRICHLET_DRAWS} draws ({len(labels)} examples); raise '
      '--dirichlet_alpha or lower --num_clients.')


def _iid_entry(labels: np.ndarray, *, num_clients: int, seed: int,
               dirichlet_alpha: float) -> list[np.ndarray]:
  """`iid` with the uniform PARTITIONS signature (alpha is unused)."""
  del dirichlet_alpha
  return iid(labels, num_clients=num_clients, seed=seed)


def _shards_entry(labels: np.ndarray, *, num_clients: int, seed: int,
                  dirichlet_alpha: float) -> list[np.ndarray]:
  """`shards` with _SHARDS_PER_CLIENT, in the uniform PARTITIONS signature (alpha is unused)."""
  del dirichlet_alpha
  return shards(labels, num_clients=num_clients, seed=seed,
                shards_per_client=_SHARDS_PER_CLIENT)


def _dirichlet_entry(labels: np.ndarray, *, num_clients: int, seed: int,
                     dirichlet_alpha: float) -> list[np.ndarray]:
  """`dirichlet` with the uniform PARTITIONS signature."""
  return dirichlet(labels, num_clients=num_clients, seed=seed, alpha=dirichlet_alpha)


# Called uniformly as PARTITIONS[name](labels, num_clients=n, seed=s, dirichlet_alpha=a).
PARTITIONS: dict[str, Callable[..., list[np.ndarray]]] = {
    'iid': _iid_entry,
    'shards': _shards_entry,
    'dirichlet': _dirichlet_entry,
}



def split_params(name: str, *, dirichlet_alpha: float) -> dict[str, float]:
  """The parameters (besides num_clients and seed) that determine PARTITIONS[name]'s split.

  For cache fingerprints: unused flags stay out, so e.g. iid runs share one cache.
  """
  return {
      'iid': {},
      'shards': {'shards_per_client': _SHARDS_PER_CLIENT},
      'dirichlet': {'alpha': float(dirichlet_alpha)},
  }[name]


def _check_common(labels: np.ndarray, *, num_clients: int, seed: int) -> None:
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


def _sorted_parts(parts: list[np.ndarray]) -> list[np.ndarray]:
  """Sorts each client's indices (stable file contents) and fixes the dtype to int64."""
  return [np.sort(p).astype(np.int64) for p in parts]
