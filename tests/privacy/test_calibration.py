"""Noise calibration: the smallest noise reaching the target epsilon, over the planned releases."""

import types

import pytest

from tff_experiments.privacy import accounting
from tff_experiments.privacy import calibration

# 50 of 1,000 clients, delta = 1/3,400 (test_accounting's plan over a smaller population).
_PLAN = dict(mechanism='gaussian', mode='central', population=1000, clients_per_round=50,
             delta=1 / 3400)


@pytest.mark.parametrize('sampling, target', [('poisson', 2.0), ('uniform', 8.0)])
def test_calibrated_noise_reaches_the_target_within_one_percent(sampling, target):
  plan = accounting.PrivacyPlan(sampling=sampling, accountant='rdp', **_PLAN)
  z = calibration.noise_multiplier(plan, target, 200)
  assert target * 0.99 <= plan.epsilon(z, 200) <= target
  assert plan.epsilon(z * 0.98, 200) > target  # The smallest such noise, not any.


class _Planner:
  """Rounds 1-3 reported by a+b, a, a+c (a takes part 3 times, b and c once)."""
  _REPORTING = {1: ('a', 'b'), 2: ('a',), 3: ('a', 'c')}

  def plan(self, round_num):
    return types.SimpleNamespace(reporting=self._REPORTING[round_num])


def test_central_releases_are_the_rounds_and_need_no_plans():
  plan = accounting.PrivacyPlan(sampling='poisson', accountant='rdp', **_PLAN)
  assert calibration.planned_releases(plan, 7, planner=lambda: pytest.fail('planned')) == 7


def test_local_releases_are_the_most_rounds_one_client_reports_in():
  plan = accounting.PrivacyPlan(sampling='poisson', accountant='rdp', **{**_PLAN,
                                                                           'mode': 'local'})
  assert calibration.planned_releases(plan, 3, planner=_Planner) == 3
  assert calibration.planned_releases(plan, 2, planner=_Planner) == 2
