"""Noise calibration to `--dp_target_epsilon`: the smallest noise multiplier whose epsilon after
the run's planned releases is at most the target.

The releases are known before the run, since round plans are functions of the seed: the rounds
in central mode, in local mode the most rounds any one client reports in. The assembly
(`experiment.complete`) calibrates once the data is loaded, and hparams.json records the result.
"""

import collections
from typing import Callable

import dp_accounting

from tff_experiments.privacy import accounting
from tff_experiments.runner import round_plan

_TOLERANCE = 1e-4  # On the noise multiplier: far below the 1% asked of epsilon.
_MIN_NOISE_MULTIPLIER = 1e-2  # The search starts above it (z = 0 has no finite epsilon).


def planned_releases(plan: accounting.PrivacyPlan, total_rounds: int,
                     planner: Callable[[], round_plan.RoundPlanner]) -> int:
  """Releases over the planned rounds: the rounds, or for per-client modes the most rounds any
  one client reports in (`planner()` is called only then)."""
  if not plan.per_client:
    return total_rounds
  plans = planner()
  counts = collections.Counter(c for r in range(1, total_rounds + 1)
                               for c in plans.plan(r).reporting)
  return max(counts.values(), default=0)


def noise_multiplier(plan: accounting.PrivacyPlan, target_epsilon: float,
                     releases: int) -> float:
  """The smallest noise multiplier whose epsilon after `releases` is <= the target
  (`dp_accounting.mechanism_calibration`, to within `_TOLERANCE`)."""
  relation = plan.release(1.0)[1]
  return float(dp_accounting.mechanism_calibration.calibrate_dp_mechanism(
      lambda: accounting.ACCOUNTANTS.get(plan.accountant)(relation),
      lambda z: dp_accounting.SelfComposedDpEvent(plan.release(z)[0], releases),
      target_epsilon, plan.delta,
      bracket_interval=dp_accounting.mechanism_calibration.LowerEndpointAndGuess(
          _MIN_NOISE_MULTIPLIER, 1.0),
      tol=_TOLERANCE))
