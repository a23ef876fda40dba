"""Synthetic client splits of a centralized dataset: iid, shards, dirichlet and label quantity.

Pure numpy and deterministic in `seed`. Each function returns one sorted int64 array of example
indices per client; an index lands in at most one client, and in exactly one except for
label_quantity's unheld classes. `PARTITIONS` registers them with the flags of their parameters
(dirichlet, NIID-Bench's rule, is `datasets.dirichlet`; the checks every split makes of its
arguments are `split_args`).
"""

from collections.abc import Callable, Mapping
import dataclasses
import numbers
from typing import Any, Optional

import numpy as np

from datasets import base
from datasets import dirichlet as dirichlet_split
from datasets import split_args

# Shards per client in the registered 'shards' partition (McMahan et al. 2017 use 2).
_SHARDS_PER_CLIENT = 2


def iid(labels: np.ndarray, *, num_clients: int, seed: int) -> list[np.ndarray]:
  """Shuffles all examples and deals them into equal parts (sizes differ by at most 1)."""
  split_args.check_common(labels, num_clients=num_clients, seed=seed)
  rng = np.random.default_rng(seed)
  order = rng.permutation(len(labels))
  return split_args.sorted_parts(np.array_split(order, num_clients))


def shards(labels: np.ndarray, *, num_clients: int, seed: int,
           shards_per_client: int = 2) -> list[np.ndarray]:
  """Pathological non-IID split of McMahan et al. (2017): a few label-sorted shards per client.

  Examples are shuffled, stably sorted by label, cut into `shards_per_client * num_clients`
  equal shards (sizes differ by at most 1), and each client gets `shards_per_client` random ones.
  """
  split_args.check_common(labels, num_clients=num_clients, seed=seed)
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
  return split_args.sorted_parts([np.concatenate([pieces[s] for s in row]) for row in owners])


def label_quantity(labels: np.ndarray, *, num_clients: int, seed: int,
                   labels_per_client: int) -> list[np.ndarray]:
  """NIID-Bench's "#C=k" label-quantity skew (Li et al. 2021): each client holds k labels.

  With K classes present (in sorted order), client i holds class i % K (so every class is held
  once num_clients >= K) and k - 1 other classes drawn uniformly without repetition. Each class's
  examples are then shuffled and split equally (np.array_split, in client order) among the
  clients holding it. With num_clients < K, a class that no client drew stays unused: its
  examples are in no client (the one partition here that may leave examples out).

  Raises:
    base.DataError: labels_per_client outside 1..K (naming --labels_per_client), or a client
      left without examples (a class with fewer examples than clients holding it), which
      client files cannot hold and training could not weigh.
  """
  split_args.check_common(labels, num_clients=num_clients, seed=seed)
  classes = np.unique(labels)
  k = labels_per_client
  if (not isinstance(k, numbers.Integral) or isinstance(k, bool)
      or not 1 <= k <= len(classes)):
    raise base.DataError(f'--labels_per_client must be an integer in [1, {len(classes)}] (the '
                         f'number of classes present), got {k!r}')
  rng = np.random.default_rng(seed)
  held = np.zeros((num_clients, len(classes)), dtype=bool)
  for client in range(num_clients):
    first = client % len(classes)
    others = np.delete(np.arange(len(classes)), first)
    held[client, [first, *rng.choice(others, size=k - 1, replace=False)]] = True
  parts = [[] for _ in range(num_clients)]
  for c, label in enumerate(classes):
    holders = np.flatnonzero(held[:, c])
    if not len(holders):
      continue
    pieces = np.array_split(rng.permutation(np.flatnonzero(labels == label)), len(holders))
    for client, piece in zip(holders, pieces):
      parts[client].append(piece)
  sizes = [sum(len(piece) for piece in p) for p in parts]
  if min(sizes) == 0:
    raise base.DataError(
        f'--labels_per_client={k} with --num_clients={num_clients} left client '
        f'{sizes.index(0)} without examples: a class has fewer examples than clients holding '
        'it; lower --num_clients or raise --labels_per_client.')
  return split_args.sorted_parts([np.concatenate(p) for p in parts])


@dataclasses.dataclass(frozen=True)
class Param:
  """A parameter of a partition: set by the setting (flag) `flag`, or fixed at `fixed`.

  `kind` (int or float) is the type it enters cache fingerprints as, so 1 and 1.0 share one.
  """
  kind: type
  flag: Optional[str] = None
  fixed: Any = None


@dataclasses.dataclass(frozen=True)
class Partition:
  """A registered split: `split(labels, *, num_clients, seed, **params)` and its parameters.

  Called uniformly as `PARTITIONS[name](labels, num_clients=n, seed=s, partition_params=p)`,
  with `p` exactly the names of `params` (see `params_from_flags`).
  """
  split: Callable[..., list[np.ndarray]]
  params: Mapping[str, Param] = dataclasses.field(default_factory=dict)
  # Bumped when the same arguments give another split (cache keys hold it, see `rule_key`).
  version: int = 1

  def __call__(self, labels: np.ndarray, *, num_clients: int, seed: int,
               partition_params: Mapping[str, Any]) -> list[np.ndarray]:
    _check_param_names(self, partition_params)
    return self.split(labels, num_clients=num_clients, seed=seed, **partition_params)


# A new partition is one entry here (its split function and the flags of its parameters).
PARTITIONS: dict[str, Partition] = {
    'iid': Partition(iid),
    'shards': Partition(shards, {'shards_per_client': Param(int, fixed=_SHARDS_PER_CLIENT)}),
    # Version 2: NIID-Bench's rule (capped shares, >= 10 examples per client).
    'dirichlet': Partition(dirichlet_split.split,
                           {'alpha': Param(float, flag='dirichlet_alpha')}, version=2),
    'label_quantity': Partition(
        label_quantity, {'labels_per_client': Param(int, flag='labels_per_client')}),
}


def params_from_flags(name: str, flags: Mapping[str, Any]) -> dict[str, Any]:
  """The partition_params of PARTITIONS[name], read from flag name -> value (`flags`).

  The one place that says which settings feed which partition. Splits outside PARTITIONS
  (the natural per-writer split) take no parameters: {}.
  """
  if name not in PARTITIONS:
    return {}
  return {param: flags[spec.flag] if spec.flag else spec.fixed
          for param, spec in PARTITIONS[name].params.items()}


def split_params(name: str, partition_params: Mapping[str, Any]) -> dict[str, Any]:
  """The parameters (besides num_clients and seed) that determine PARTITIONS[name]'s split.

  For cache fingerprints: each of the partition's own parameters as its `kind`, nothing else,
  so e.g. iid runs share one cache whatever --dirichlet_alpha says.
  """
  partition = PARTITIONS[name]
  _check_param_names(partition, partition_params)
  return {param: spec.kind(partition_params[param])
          for param, spec in partition.params.items()}


def rule_key(name: str) -> dict[str, int]:
  """What identifies PARTITIONS[name]'s rule in cache fingerprints besides its parameters: its
  version when above 1, so a changed rule never reuses old client files (version 1 adds
  nothing: caches written before versions existed keep their names)."""
  version = PARTITIONS[name].version
  return {} if version == 1 else {'partition_version': version}


def _check_param_names(partition: Partition, partition_params: Mapping[str, Any]) -> None:
  """DataError unless `partition_params` has exactly the partition's parameter names."""
  expected, got = sorted(partition.params), sorted(partition_params)
  if got != expected:
    flags = [f'--{spec.flag}' for spec in partition.params.values() if spec.flag]
    raise base.DataError(
        f'partition {partition.split.__name__!r} takes parameters {expected} '
        f'(flags {flags}), got {got}.')
