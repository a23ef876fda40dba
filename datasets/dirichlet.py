"""The Dirichlet label-skew split (`--partition=dirichlet`), NIID-Bench's rule exactly.

Pure numpy, every draw from the `core.seeds` stream of the split seed; bounded in work so that
a pathological alpha fails fast with a message instead of running for minutes.
"""

import numbers
import time
from typing import Optional

import numpy as np

from datasets import base
from datasets import split_args
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


def split(labels: np.ndarray, *, num_clients: int, seed: int,
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

  Unlike NIID-Bench's unbounded loop, the redraws number `min(_MAX_DIRICHLET_DRAWS, budget //
  _draw_cost_ns)`: about 2 s of work at most, by a count, so the outcome depends only on the
  arguments. numpy's sampler slows down like 1/alpha below 0.1 (MNIST at alpha=1e-9 once ran
  18 minutes); when not even one draw fits, the call fails up front. Typical inputs keep all
  200 draws (MNIST, 1,000 clients, alpha >= 1e-5: ~3 ms each). A wall-clock guard (60 s) only
  backs up the cost model.

  Raises:
    base.DataError: bad arguments; fewer than 10 examples per client to split (the rule cannot
      be met); or no draw within the bound gave every client 10 examples. The message names
      --dirichlet_alpha and --num_clients and the numbers.
  """
  split_args.check_common(labels, num_clients=num_clients, seed=seed)
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
      return split_args.sorted_parts(parts)
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
