"""Synthetic client splits of a centralized dataset: iid, shards, dirichlet and label quantity.

Pure numpy and deterministic in `seed`. Each function returns one sorted int64 array of example
indices per client; an index lands in at most one client, and in exactly one except for
label_quantity's unheld classes. `PARTITIONS` registers them with the flags of their parameters.
"""

from collections.abc import Callable, Mapping
import dataclasses
import numbers
import time
from typing import Any, Optional

import numpy as np

from datasets import base
from tff_experiments.core import seeds

# NIID-Bench's min_require_size: a Dirichlet split is redrawn until every client holds this many.
_NIID_BENCH_MIN_SIZE = 10
# Purpose of the Dirichlet split's random stream (`core.seeds`), seeded by the split seed.
_DIRICHLET_PURPOSE = 'partition:dirichlet'
# Bound on Dirichlet redraws before giving up on "every client gets 10 examples" ...
_MAX_DIRICHLET_DRAWS = 200
# ... lowered so that all draws together cost at most this much by _draw_cost_ns (about 2 s).
_DIRICHLET_WORK_BUDGET_NS = 2e9
# Wall-clock backstop far above the budget, in case the cost model ever underestimates.
_DIRICHLET_SAFETY_NET_S = 60.0
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
  """NIID-Bench's label-skewed split (Li et al. 2021, "noniid-labeldir"), exactly.

  Follows `partition_data` in utils.py of github.com/Xtra-Computing/NIID-Bench (commit
  61b901ab645e62391772e9898384c2c3485b7a6c): for each class in sorted order, its indices are
  shuffled and proportions ~ Dir(alpha) drawn; a client already holding >= N / num_clients
  examples gets a zero share, the rest are renormalized, and the class is cut at
  int(cumsum(p) * n_class). The whole split is redrawn until every client holds at least
  `_NIID_BENCH_MIN_SIZE` (10) examples. The draws come in NIID-Bench's order (shuffle, then
  Dirichlet, class by class) from a Generator of `core.seeds` seeded by the split seed, so the
  same generator gives NIID-Bench's assignment (its final per-client shuffle only orders a
  client's indices, which are sorted here). Where NIID-Bench's code would divide 0 by 0 (every
  client under the cap drew an exact zero, only at tiny alpha) or numpy's sampler underflows,
  the draw is redrawn.

  Unlike NIID-Bench's unbounded loop, the redraws are bounded so the call finishes in about
  `_DIRICHLET_WORK_BUDGET_NS` (2 s) at most, by a count, so the outcome (split or DataError)
  depends only on the arguments, never on machine speed. `_draw_cost_ns` estimates one draw
  from the input size and alpha; the number of draws is `min(_MAX_DIRICHLET_DRAWS, budget //
  cost)`. The alpha term matters: numpy's sampler for alpha < 0.1 slows down like 1/alpha
  (~0.4 s per vector at alpha=1e-9 and 100 clients), which is what once made MNIST at
  `--dirichlet_alpha=1e-9` run for 18 minutes without output. When not even one draw fits the
  budget, the call fails up front without drawing. Typical inputs keep all 200 draws (MNIST,
  1,000 clients, any alpha >= 1e-5: about 3 ms per draw). A wall-clock guard
  (`_DIRICHLET_SAFETY_NET_S`, 60 s) only backs up the cost model if a numpy release changes
  its sampler.

  Raises:
    base.DataError: bad arguments; fewer than 10 examples per client to split (the rule cannot
      be met); or no draw within the bound gave every client 10 examples. The message names
      --dirichlet_alpha and --num_clients and the numbers.
  """
  _check_common(labels, num_clients=num_clients, seed=seed)
  if (not isinstance(alpha, numbers.Real) or isinstance(alpha, bool) or not np.isfinite(alpha)
      or alpha <= 0):
    raise base.DataError(f'--dirichlet_alpha must be a finite number > 0, got {alpha!r}')
  alpha = float(alpha)
  num_examples = len(labels)
  if num_examples < _NIID_BENCH_MIN_SIZE * num_clients:
    raise base.DataError(
        f'--dirichlet_alpha={alpha:g} with --num_clients={num_clients}: NIID-Bench\'s rule gives '
        f'every client at least {_NIID_BENCH_MIN_SIZE} examples, '
        f'{_NIID_BENCH_MIN_SIZE * num_clients} in all, but there are {num_examples}; lower '
        f'--num_clients to at most {num_examples // _NIID_BENCH_MIN_SIZE}.')
  class_indices = [np.flatnonzero(labels == c) for c in np.unique(labels)]
  draw_cost_ns = _draw_cost_ns([len(i) for i in class_indices], num_clients, alpha)
  max_draws = int(min(_MAX_DIRICHLET_DRAWS, _DIRICHLET_WORK_BUDGET_NS // draw_cost_ns))
  advice = 'raise --dirichlet_alpha or lower --num_clients'
  if max_draws < 1:
    raise base.DataError(
        f'--dirichlet_alpha={alpha:g} with --num_clients={num_clients}: one draw of the split '
        f'would take about {draw_cost_ns / 1e9:.0f} s (the Dirichlet sampler slows down like '
        f'1/alpha), over the {_DIRICHLET_WORK_BUDGET_NS / 1e9:.0f} s bound; at such a small alpha '
        'each class goes almost wholly to one client, so clients beyond the number of classes '
        f'stay empty anyway; {advice}.')
  rng = seeds.generator(seed, purpose=_DIRICHLET_PURPOSE)
  deadline = time.monotonic() + _DIRICHLET_SAFETY_NET_S
  for _ in range(max_draws):
    parts = _niid_bench_draw(rng, class_indices, num_clients=num_clients, alpha=alpha,
                             num_examples=num_examples, deadline=deadline)
    if time.monotonic() > deadline:
      raise base.DataError(
          f'--dirichlet_alpha={alpha:g} with --num_clients={num_clients}: the split took over '
          f'{_DIRICHLET_SAFETY_NET_S:.0f} s; {advice}.')
    if parts is not None and min(len(p) for p in parts) >= _NIID_BENCH_MIN_SIZE:
      return _sorted_parts(parts)
  raise base.DataError(
      f'--dirichlet_alpha={alpha:g} with --num_clients={num_clients} left some client with '
      f'fewer than {_NIID_BENCH_MIN_SIZE} examples (NIID-Bench\'s minimum) in each of '
      f'{max_draws} draws ({num_examples} examples, {len(class_indices)} classes); {advice}.')


def _niid_bench_draw(rng: np.random.Generator, class_indices: list[np.ndarray], *,
                     num_clients: int, alpha: float, num_examples: int,
                     deadline: float) -> Optional[list[np.ndarray]]:
  """One pass of NIID-Bench's loop over the classes: each client's indices, or None if a
  class's shares cannot be normalized (underflow) or the deadline passed."""
  parts: list[list[np.ndarray]] = [[] for _ in range(num_clients)]
  sizes = np.zeros(num_clients, np.int64)
  fair_share = num_examples / num_clients
  for indices in class_indices:
    shuffled = indices.copy()
    rng.shuffle(shuffled)
    proportions = rng.dirichlet(np.repeat(alpha, num_clients))
    proportions = proportions * (sizes < fair_share)  # Full clients get no more.
    total = proportions.sum()
    if not np.isfinite(total) or total <= 0 or time.monotonic() > deadline:
      return None
    proportions = proportions / total
    cuts = (np.cumsum(proportions) * len(shuffled)).astype(int)[:-1]
    for client, piece in enumerate(np.split(shuffled, cuts)):
      parts[client].append(piece)
      sizes[client] += len(piece)
  return [np.concatenate(p) for p in parts]


def _draw_cost_ns(class_sizes: list[int], num_clients: int, alpha: float) -> float:
  """Estimated time of one whole dirichlet() draw, in nanoseconds of a 2020s x86 core.

  Deliberately generous: measured per class (numpy 1.25) are ~5 us per call, ~8 ns per shuffled
  index, ~35 ns per Dirichlet component, and, for alpha < 0.1, ~50-80 ns per iteration of the
  rejection loop in numpy's stick-breaking Beta(alpha, m * alpha) draws (m = clients left); an
  iteration is accepted when one of two uniforms to the power 1/alpha or 1/(m * alpha) does not
  underflow, chance ~min(1, 744 * alpha * (m + 1)).
  """
  rejection_iterations = 0.0
  if alpha < 0.1:
    remaining = np.arange(2, num_clients + 1, dtype=np.float64)
    rejection_iterations = float(np.sum(1.0 / np.minimum(1.0, 744.0 * alpha * remaining)))
  per_class = 20_000 + 100 * num_clients + 100 * rejection_iterations
  return float(len(class_sizes) * per_class + 10 * sum(class_sizes))


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
  _check_common(labels, num_clients=num_clients, seed=seed)
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
  return _sorted_parts([np.concatenate(p) for p in parts])


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
    'dirichlet': Partition(dirichlet, {'alpha': Param(float, flag='dirichlet_alpha')},
                           version=2),
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
