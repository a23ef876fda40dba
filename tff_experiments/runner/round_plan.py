"""What a round does, decided before it runs: cohort, who reports, step caps, seeds.

A `RoundPlanner` asks a sampler (`SAMPLERS`, `--client_sampling`) for the cohort, then applies
adjustments in order (each a seeded function of the plan: stragglers' step caps, drop-outs).
Everything is a function of (seed, round), so a resumed run replans exactly the same rounds.
A plan whose every client dropped is skipped: the runner records it and leaves the model as is.
"""

import dataclasses
from typing import Callable, Mapping, Optional, Sequence

import numpy as np
import tensorflow_federated as tff

from tff_experiments.clients import client_data
from tff_experiments.clients import holdout
from tff_experiments.core import registry
from tff_experiments.core import seeds

# sampler(client_ids, *, seed, clients_per_round) -> (round_num -> cohort ids)
Sampler = Callable[..., Callable[[int], list[str]]]


def _uniform(client_ids: Sequence[str], *, seed: int, clients_per_round: int
             ) -> Callable[[int], list[str]]:
  """`clients_per_round` distinct clients, uniformly (TFF's seeded sampler, a function of
  (seed, round)); the seed is a Python int, or TFF's sampler silently goes unseeded. The ids
  go in as one numpy array, made once: TFF's sampler would convert a list every round (~10 ms
  at 10^5 clients; the draws are the same)."""
  sample = tff.simulation.build_uniform_sampling_fn(
      np.asarray(list(client_ids)), replace=False, random_seed=seeds.check_seed(seed))
  return lambda round_num: list(sample(round_num, clients_per_round))


def _poisson(client_ids: Sequence[str], *, seed: int, clients_per_round: int
             ) -> Callable[[int], list[str]]:
  """Each client independently with probability clients_per_round / N (the sampling DP-FedAvg's
  accounting assumes; the cohort size varies and may be 0), seeded by (seed, round)."""
  ids = np.asarray(list(client_ids))
  rate = clients_per_round / len(ids)

  def sample(round_num: int) -> list[str]:
    draws = seeds.generator(seed, purpose='poisson_sampling', round_num=round_num).random(len(ids))
    return ids[draws < rate].tolist()

  return sample


SAMPLERS: registry.Registry[Sampler] = registry.Registry(
    'client sampler', flag='client_sampling', entries={'uniform': _uniform, 'poisson': _poisson})


@dataclasses.dataclass(frozen=True)
class RoundPlan:
  """One round: the sampled cohort, reporting clients with their step caps, and drop-outs."""
  round_num: int
  sampled: tuple[str, ...]
  step_caps: Mapping[str, Optional[int]]  # reporting client -> cap (None: uncapped)
  shuffle_seeds: Mapping[str, int]
  update_seeds: Mapping[str, int]  # Each client's draws on its update (`clients.update_weight`).
  step_fractions: Mapping[str, float] = dataclasses.field(default_factory=dict)  # Partial work.
  learning_rate: Optional[float] = None  # The round's client lr (None: the update's constant).
  holdout_seeds: Mapping[str, int] = dataclasses.field(default_factory=dict)  # `holdout` seeds.

  @property
  def reporting(self) -> tuple[str, ...]:
    return tuple(c for c in self.sampled if c in self.step_caps)

  @property
  def dropped(self) -> tuple[str, ...]:
    return tuple(c for c in self.sampled if c not in self.step_caps)

  @property
  def skipped(self) -> bool:
    """No client reports: the round runs no computation and leaves the model unchanged."""
    return not self.reporting

  def tasks(self) -> list:
    """The reporting clients' `client_data` tasks, in cohort order."""
    return [client_data.task(c, shuffle_seed=self.shuffle_seeds[c],
                             update_seed=self.update_seeds[c], max_steps=self.step_caps[c],
                             step_fraction=self.step_fractions.get(c, 1.0),
                             learning_rate=self.learning_rate,
                             holdout_seed=self.holdout_seeds.get(c, 0))
            for c in self.reporting]

  def drop(self, client_ids) -> 'RoundPlan':
    """The plan without `client_ids` reporting."""
    gone = set(client_ids)
    return dataclasses.replace(
        self, step_caps={c: s for c, s in self.step_caps.items() if c not in gone})

  def cap_steps(self, caps: Mapping[str, int]) -> 'RoundPlan':
    """The plan with each client in `caps` limited to at most that many local steps."""
    merged = dict(self.step_caps)
    for client, cap in caps.items():
      if client in merged:
        merged[client] = cap if merged[client] is None else min(cap, merged[client])
    return dataclasses.replace(self, step_caps=merged)

  def partial_work(self, fractions: Mapping[str, float]) -> 'RoundPlan':
    """The plan with each client in `fractions` doing that fraction (0, 1] of its steps."""
    return dataclasses.replace(self, step_fractions={**self.step_fractions, **fractions})

  def metrics(self) -> dict[str, float]:
    """Columns recorded for every round (the learning rate when the plan sets one)."""
    columns = {'plan/clients_sampled': len(self.sampled),
               'plan/clients_reporting': len(self.reporting),
               'plan/clients_dropped': len(self.dropped)}
    if self.learning_rate is not None:
      columns['plan/client_learning_rate'] = self.learning_rate
    return columns


def update_seeds(seed: int, round_num: int, client_ids: Sequence[str]) -> dict[str, int]:
  """Each client's update seed of the round: from (seed, round, client), never the data."""
  return {c: seeds.derive(seed, purpose='update', round_num=round_num, client=c)
          for c in client_ids}


# adjustment(plan, rng) -> plan; rng is seeded from (seed, round, the adjustment's purpose).
Adjustment = Callable[[RoundPlan, np.random.Generator], RoundPlan]


def client_dropout(rate: float) -> Adjustment:
  """Each sampled client independently fails to report with probability `rate`."""
  def adjust(plan: RoundPlan, rng: np.random.Generator) -> RoundPlan:
    fails = rng.random(len(plan.sampled)) < rate
    return plan.drop([c for c, failed in zip(plan.sampled, fails) if failed])
  return adjust


def stragglers(fraction: float, policy: str) -> Adjustment:
  """round(fraction * sampled) clients, drawn each round, are stragglers: with policy `drop`
  they do not report; with `partial` each does a uniform fraction of its local steps
  (FedProx paper's systems heterogeneity: between 1 and all of them)."""
  def adjust(plan: RoundPlan, rng: np.random.Generator) -> RoundPlan:
    count = int(round(fraction * len(plan.sampled)))
    slow = [plan.sampled[i] for i in sorted(rng.choice(len(plan.sampled), count,
                                                         replace=False))]
    return STRAGGLER_POLICIES.get(policy)(plan, slow, rng)
  return adjust


# policy -> fn(plan, stragglers, rng) -> plan
STRAGGLER_POLICIES = registry.Registry('straggler policy', flag='straggler_policy', entries={
    'drop': lambda plan, slow, rng: plan.drop(slow),
    'partial': lambda plan, slow, rng: plan.partial_work(
        {c: float(1.0 - u) for c, u in zip(slow, rng.random(len(slow)))}),  # u in (0, 1].
})


# name (also the purpose its rng is seeded with) -> fn(config) -> Adjustment or None (off).
ADJUSTMENTS: registry.Registry[Callable[..., Optional[Adjustment]]] = registry.Registry(
    'round plan adjustment', flag='(none)', entries={
        'stragglers': lambda config: (
            stragglers(config.client.straggler_fraction, config.client.straggler_policy)
            if config.client.straggler_fraction > 0 else None),
        'client_dropout': lambda config: (client_dropout(config.client.dropout_rate)
                                          if config.client.dropout_rate > 0 else None),
    })


def adjustments(config) -> list[tuple[str, Adjustment]]:
  """The (purpose, adjustment) pairs the config enables, in registration order."""
  return [(name, adjust) for name, make in ADJUSTMENTS.items()
          if (adjust := make(config)) is not None]


class RoundPlanner:
  """Plans rounds from a sampler, a global step cap, named seeded adjustments and, if given, a
  learning-rate schedule (round -> client lr) and the split seed of the clients' held-out parts."""

  def __init__(self, client_ids: Sequence[str], *, seed: int, clients_per_round: int,
               sampler: str = 'uniform', max_steps: Optional[int] = None,
               adjustments: Sequence[tuple[str, Adjustment]] = (),
               learning_rate: Optional[Callable[[int], float]] = None,
               split_seed: Optional[int] = None):
    self._seed = seeds.check_seed(seed)
    self._sample = SAMPLERS.get(sampler)(client_ids, seed=self._seed,
                                         clients_per_round=clients_per_round)
    self._max_steps = max_steps
    self._adjustments = tuple(adjustments)
    self._learning_rate = learning_rate
    self._split_seed = split_seed

  def plan(self, round_num: int) -> RoundPlan:
    """The plan of `round_num` (the same every time it is asked)."""
    cohort = tuple(self._sample(round_num))
    plan = RoundPlan(
        round_num=round_num, sampled=cohort,
        step_caps={c: self._max_steps for c in cohort},
        shuffle_seeds={c: seeds.derive(self._seed, purpose='shuffle', round_num=round_num,
                                       client=c) for c in cohort},
        update_seeds=update_seeds(self._seed, round_num, cohort),
        learning_rate=(None if self._learning_rate is None
                       else self._learning_rate(round_num)),
        holdout_seeds=({} if self._split_seed is None else
                       {c: holdout.client_seed(self._split_seed, c) for c in cohort}))
    for purpose, adjust in self._adjustments:
      plan = adjust(plan, seeds.generator(self._seed, purpose=purpose, round_num=round_num))
    return plan
