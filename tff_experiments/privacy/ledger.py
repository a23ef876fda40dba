"""The privacy ledger: `privacy/epsilon` in every metrics row, and the budget stop.

A round hook that counts releases from the round plans (so a resumed run, which replays the
plans of the rounds already done, continues the same column): every round in central mode,
each client's participations in local mode (epsilon is then the worst client's). It also
completes the settings that need the loaded data: delta's default for natural datasets and the
noise multiplier calibrated to `--dp_target_epsilon`.
"""

import collections
import dataclasses
import math
from typing import Callable, Optional

from tff_experiments.core import config as config_lib
from tff_experiments.privacy import accounting
from tff_experiments.privacy import privacy_settings
from tff_experiments.runner import hooks
from tff_experiments.runner import round_plan


def privacy_plan(config, population: int) -> accounting.PrivacyPlan:
  """The accounting parameters of a (completed) config over `population` clients."""
  dp = config.privacy
  return accounting.PrivacyPlan(
      mechanism=dp.mechanism, mode=dp.mode, sampling=config.schedule.client_sampling,
      population=population, clients_per_round=config.schedule.clients_per_round,
      delta=dp.delta, accountant=dp.accountant)


def planned_releases(plan: accounting.PrivacyPlan, total_rounds: int,
                     planner: Callable[[], round_plan.RoundPlanner]) -> int:
  """Releases over the planned rounds: the rounds, or for per-client modes the most rounds any
  one client reports in (the plans are functions of the seed, so this is known up front)."""
  if not plan.per_client:
    return total_rounds
  plans = planner()
  counts = collections.Counter(c for r in range(1, total_rounds + 1)
                               for c in plans.plan(r).reporting)
  return max(counts.values(), default=0)


def complete(config, *, population: int,
             planner: Callable[[], round_plan.RoundPlanner]):
  """The config with delta and the noise multiplier filled in (unchanged without DP);
  `planner()` is called only when the calibration needs the planned cohorts."""
  dp = config.privacy
  if not privacy_settings.enabled(config_lib.flat(config)):
    return config
  if dp.delta is None:
    dp = dataclasses.replace(dp, delta=accounting.default_delta(population))
  if dp.noise_multiplier is None:
    plan = privacy_plan(dataclasses.replace(config, privacy=dp), population)
    dp = dataclasses.replace(dp, noise_multiplier=plan.calibrate(
        dp.target_epsilon, planned_releases(plan, config.schedule.total_rounds, planner)))
  return dataclasses.replace(config, privacy=dp)


class PrivacyLedger(hooks.RoundHook):
  """Adds `privacy/epsilon` (after the round) to each row; stops at the budget if asked."""

  def __init__(self, plan: accounting.PrivacyPlan, noise_multiplier: float, *,
               budget: Optional[float] = None):
    self._plan, self._noise_multiplier, self._budget = plan, noise_multiplier, budget
    self._rounds = 0
    self._participations = collections.Counter()
    self._epsilons: dict[int, float] = {}

  def _releases(self, plan: Optional[round_plan.RoundPlan] = None) -> int:
    """Releases so far, and with `plan`'s round if given."""
    if not self._plan.per_client:
      return self._rounds + (plan is not None)
    counts = collections.Counter(self._participations)
    counts.update(plan.reporting if plan is not None else ())
    return max(counts.values(), default=0)

  def epsilon(self, releases: int) -> float:
    if releases not in self._epsilons:
      self._epsilons[releases] = self._plan.epsilon(self._noise_multiplier, releases)
    return self._epsilons[releases]

  def replay(self, plan):
    self._rounds += 1
    self._participations.update(plan.reporting)

  def before_round(self, plan):
    if self._budget is None:
      return None
    epsilon = self.epsilon(self._releases(plan))
    if epsilon > self._budget:
      return hooks.Stop('budget_exhausted', f'round {plan.round_num} would take epsilon to '
                        f'{epsilon:.4g} > --dp_target_epsilon={self._budget:g}')
    return None

  def after_round(self, plan, row):
    self.replay(plan)
    return {'privacy/epsilon': self.epsilon(self._releases())}

  def summary(self) -> dict:
    """summary.json's DP fields. Without noise epsilon is infinite, which JSON cannot hold:
    `final_epsilon` is then null and `final_epsilon_unbounded` true (no guarantee at all)."""
    epsilon = self.epsilon(self._releases())
    unbounded = math.isinf(epsilon)
    return {'final_epsilon': None if unbounded else epsilon,
            'final_epsilon_unbounded': unbounded, 'dp_delta': self._plan.delta,
            'dp_accountant': self._plan.accountant,
            'dp_noise_multiplier': self._noise_multiplier, 'dp_mode': self._plan.mode}


def build(config, population: int) -> Optional[PrivacyLedger]:
  """The ledger of a completed config (None without DP)."""
  if not privacy_settings.enabled(config_lib.flat(config)):
    return None
  dp = config.privacy
  return PrivacyLedger(privacy_plan(config, population), dp.noise_multiplier,
                       budget=dp.target_epsilon if dp.stop_at_budget else None)
