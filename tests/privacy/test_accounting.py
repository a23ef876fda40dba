"""Privacy accounting: epsilon against independent dp_accounting calls, checks."""

import dp_accounting
from dp_accounting import pld
from dp_accounting import rdp
import pytest

from tff_experiments.core import config as config_lib
from tff_experiments.privacy import accounting

# z = 1.0, 50 of 3,400 clients, 1,000 rounds, delta = 1/3,400 (the example).
_PLAN = dict(mechanism='gaussian', mode='central', population=3400, clients_per_round=50,
             delta=1 / 3400)


def _independent(accountant, event, rounds, delta):
  accountant.compose(dp_accounting.SelfComposedDpEvent(event, rounds))
  return accountant.get_epsilon(delta)


@pytest.mark.parametrize('name, make, approx', [
    ('rdp', rdp.RdpAccountant, 2.43),
    ('pld', pld.PLDAccountant, 2.11),
])
def test_poisson_epsilon_equals_an_independent_computation(name, make, approx):
  plan = accounting.PrivacyPlan(sampling='poisson', accountant=name, **_PLAN)
  want = _independent(make(), dp_accounting.PoissonSampledDpEvent(
      50 / 3400, dp_accounting.GaussianDpEvent(1.0)), 1000, 1 / 3400)
  got = plan.epsilon(1.0, 1000)
  assert got == pytest.approx(want, rel=5e-4)
  assert got == pytest.approx(approx, abs=0.005)


def test_fixed_size_sampling_is_replace_one_with_twice_the_sensitivity():
  plan = accounting.PrivacyPlan(sampling='uniform', accountant='rdp', **_PLAN)
  replace_one = rdp.RdpAccountant(
      neighboring_relation=dp_accounting.NeighboringRelation.REPLACE_ONE)
  # Replacing one client moves the clipped sum by up to 2C: noise z*C is z/2 sensitivities.
  want = _independent(replace_one, dp_accounting.SampledWithoutReplacementDpEvent(
      3400, 50, dp_accounting.GaussianDpEvent(0.5)), 1000, 1 / 3400)
  assert plan.epsilon(1.0, 1000) == pytest.approx(want, rel=5e-4)
  # Counting C instead (the event with z) would give the smaller ~4.49.
  naive = _independent(rdp.RdpAccountant(
      neighboring_relation=dp_accounting.NeighboringRelation.REPLACE_ONE),
      dp_accounting.SampledWithoutReplacementDpEvent(
          3400, 50, dp_accounting.GaussianDpEvent(1.0)), 1000, 1 / 3400)
  assert naive == pytest.approx(4.49, abs=0.01) and plan.epsilon(1.0, 1000) > naive


def test_local_mode_is_per_participation_without_amplification():
  plan = accounting.PrivacyPlan(sampling='poisson', accountant='rdp', **{
      **_PLAN, 'mode': 'local'})
  want = _independent(rdp.RdpAccountant(), dp_accounting.GaussianDpEvent(2.0), 7, 1 / 3400)
  assert plan.epsilon(4.0, 7) == pytest.approx(want, rel=1e-9)


def test_laplace_with_pld_and_pure_epsilon_of_one_release():
  plan = accounting.PrivacyPlan(mechanism='laplace', mode='local', sampling='poisson',
                                population=100, clients_per_round=10, delta=1e-5,
                                accountant='pld')
  # One local Laplace release with scale z*C and L1 sensitivity 2C is pure (2/z)-DP.
  assert plan.epsilon(4.0, 1) == pytest.approx(0.5, abs=2e-3)


def test_no_releases_cost_nothing_and_no_noise_is_infinite():
  plan = accounting.PrivacyPlan(sampling='poisson', accountant='rdp', **_PLAN)
  assert plan.epsilon(1.0, 0) == 0.0
  assert plan.epsilon(0.0, 3) == float('inf')


def test_default_clipped_count_noise_costs_at_most_five_percent_value_noise():
  for z, cohort in [(1.0, 5), (3.0, 10), (0.5, 1000)]:
    sigma = accounting.default_clipped_count_stddev(z, cohort)
    value_z = (z ** -2 - (2 * sigma) ** -2) ** -0.5  # TFF's adaptive_clip_noise_params.
    assert sigma >= cohort / 20 and value_z <= 1.05 * z + 1e-12


@pytest.mark.parametrize('flags, names', [
    (dict(dp_mechanism='gaussian'), ['--dp_noise_multiplier', '--dp_target_epsilon']),
    (dict(dp_mechanism='laplace', dp_noise_multiplier=1.0),
     ['--dp_accountant=rdp', '--client_sampling=uniform']),
    (dict(dp_mechanism='laplace', dp_noise_multiplier=1.0, dp_adaptive_clip=True,
          client_sampling='poisson', dp_accountant='pld'), ['--dp_adaptive_clip']),
    (dict(dp_mechanism='gaussian', dp_noise_multiplier=1.0, algorithm='fednova'),
     ['--algorithm=fednova']),
    (dict(dp_mechanism='gaussian', dp_noise_multiplier=1.0, dp_delta=1.5), ['--dp_delta']),
])
def test_combinations_that_make_no_sense_fail_naming_the_flags(make_config, flags, names):
  with pytest.raises(config_lib.ConfigError) as error:
    make_config(**flags)
  assert all(name in str(error.value) for name in names)


def test_delta_defaults_to_one_over_clients_to_the_1_1(make_config):
  config = make_config(dp_mechanism='gaussian', dp_noise_multiplier=1.0, num_clients=10)
  assert config.privacy.delta == pytest.approx(10 ** -1.1)
  assert 'dp_mode' not in config_lib.active_flat(make_config())  # Off: not in hparams.
