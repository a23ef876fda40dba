"""The privacy ledger: `privacy/epsilon` in every metrics row, and the budget stop.

A round hook that counts releases from the round plans (so a resumed run, which replays the
plans of the rounds already done, continues the same column): every round in central mode,
each client's participations in local mode (epsilon is then the worst client's). It takes
its own parameters (`LedgerParams`), which the assembly builds from the completed settings
(`experiment.HOOKS`); the noise multiplier it accounts may come from `calibration`.
"""

import collections
import dataclasses
import math
from typing import Optional

from tff_experiments.privacy import accounting
from tff_experiments.runner import hooks
from tff_experiments.runner import round_plan


@dataclasses.dataclass(frozen=True)
class LedgerParams:
  """What the ledger needs of the (completed) DP settings: how one release is accounted
  (`plan`), the noise multiplier, and the epsilon it stops the run at (None: it never stops
  it)."""
  plan: accounting.PrivacyPlan
  noise_multiplier: float
  budget: Optional[float] = None


class PrivacyLedger(hooks.RoundHook):
  """Adds `privacy/epsilon` (after the round) to each row; stops at the budget if asked."""

  def __init__(self, params: LedgerParams):
    self._plan, self._noise_multiplier = params.plan, params.noise_multiplier
    self._budget = params.budget
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

