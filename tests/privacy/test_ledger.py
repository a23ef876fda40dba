"""The privacy ledger hook: epsilon after each round from its own parameters, per round or per
client, replayed on resume, and the budget stop."""

import types

import dp_accounting
from dp_accounting import rdp
import pytest

from tff_experiments.privacy import accounting
from tff_experiments.privacy import ledger


def _plan(round_num, *reporting):
  return types.SimpleNamespace(round_num=round_num, reporting=reporting)


def _gaussian_epsilon(z, rounds, *, q=None):
  """Epsilon at delta 1e-3 of `rounds` Gaussian releases (Poisson-sampled at q), by
  dp_accounting directly."""
  accountant = rdp.RdpAccountant()
  event = dp_accounting.GaussianDpEvent(z)
  if q is not None:
    event = dp_accounting.PoissonSampledDpEvent(q, event)
  accountant.compose(dp_accounting.SelfComposedDpEvent(event, rounds))
  return accountant.get_epsilon(1e-3)


def _ledger(mode, budget=None):
  plan = accounting.PrivacyPlan('gaussian', mode, 'poisson', 20, 4, 1e-3, 'rdp')
  return ledger.PrivacyLedger(ledger.LedgerParams(plan=plan, noise_multiplier=2.0,
                                                  budget=budget))


def test_central_epsilon_counts_rounds_and_resumes_from_replayed_plans():
  hook = _ledger('central')
  rows = [hook.after_round(_plan(r, 'a'), {})['privacy/epsilon'] for r in (1, 2, 3)]
  assert rows == pytest.approx([_gaussian_epsilon(2.0, r, q=4 / 20) for r in (1, 2, 3)])
  resumed = _ledger('central')
  for r in (1, 2):
    resumed.replay(_plan(r, 'a'))
  assert resumed.after_round(_plan(3, 'a'), {})['privacy/epsilon'] == pytest.approx(rows[2])


def test_local_epsilon_is_the_most_participating_clients():
  hook = _ledger('local')
  hook.after_round(_plan(1, 'a', 'b'), {})
  hook.after_round(_plan(2, 'a'), {})
  row = hook.after_round(_plan(3, 'b', 'c'), {})
  # Local: z / 2 per participation (replace-one sensitivity), a and b took part twice each.
  assert row['privacy/epsilon'] == pytest.approx(_gaussian_epsilon(1.0, 2))
  assert hook.summary()['dp_mode'] == 'local' and hook.summary()['dp_noise_multiplier'] == 2.0


def test_the_budget_stops_before_the_round_that_would_exceed_it():
  budget = (_gaussian_epsilon(2.0, 2, q=0.2) + _gaussian_epsilon(2.0, 3, q=0.2)) / 2
  hook = _ledger('central', budget=budget)
  for r in (1, 2):
    assert hook.before_round(_plan(r, 'a')) is None
    hook.after_round(_plan(r, 'a'), {})
  stop = hook.before_round(_plan(3, 'a'))
  assert stop.status == 'budget_exhausted' and 'round 3' in stop.message
  assert _ledger('central').before_round(_plan(99, 'a')) is None  # No budget: never stops.
