"""DP layers: clipping bounds each contribution, the noise has the stated scale, seeded (local
noise by each client's update seed, never by its update)."""

import dp_accounting
from dp_accounting import rdp
import numpy as np
import pytest
import tensorflow_federated as tff
from tensorflow_federated.python.aggregators import differential_privacy

from tff_experiments import settings
from tff_experiments.aggregators import stack
from tff_experiments.clients import update_weight
from tff_experiments.privacy import accounting
from tff_experiments.runner import round_plan

pytestmark = pytest.mark.usefixtures('tff_worker')


def _process(size, **flags):
  config = settings.from_flat({'num_clients': 100, 'dp_mechanism': 'gaussian', **flags})
  return stack.build(config).create(tff.TensorType(np.float32, [size]), update_weight.TYPE)


def _run(process, values, state=None, update_seeds=None):
  """One round; client i's update seed is `update_seeds[i]` (default: i)."""
  state = process.initialize() if state is None else state
  update_seeds = range(len(values)) if update_seeds is None else update_seeds
  return process.next(state, [np.asarray(v, np.float32) for v in values],
                      [update_weight.make(np.float32(1.0), np.int64(s)) for s in update_seeds])


_BIG = [np.array([3.0, -4.0, 12.0]), np.array([-6.0, 8.0, 0.0])]  # L2 13 and 10; L1 19, 14.


@pytest.mark.parametrize('mode', ['central', 'local'])
@pytest.mark.parametrize('mechanism, norm', [('gaussian', 2), ('laplace', 1)])
def test_every_contribution_is_clipped_to_the_norm(mode, mechanism, norm):
  flags = dict(dp_mechanism=mechanism, dp_mode=mode, dp_noise_multiplier=0.0,
               dp_clip_norm=2.0, clients_per_round=2, client_sampling='poisson',
               dp_accountant='pld')
  for value in _BIG:  # One client: the mean is its clipped value.
    got = np.asarray(_run(_process(3, **{**flags, 'clients_per_round': 1}), [value]).result)
    assert np.linalg.norm(got, ord=norm) == pytest.approx(2.0, rel=1e-5)
    np.testing.assert_allclose(got, value * 2.0 / np.linalg.norm(value, ord=norm), rtol=1e-5)
  both = np.asarray(_run(_process(3, **flags), _BIG).result)
  want = sum(v * 2.0 / np.linalg.norm(v, ord=norm) for v in _BIG) / 2  # Unweighted.
  np.testing.assert_allclose(both, want, rtol=1e-5)


# 40,000 noise coordinates: the sample std is within 1% of the true one with overwhelming
# probability (its relative standard error is 1/sqrt(2n) = 0.35% for the Gaussian and
# sqrt(5/(4n)) = 0.56% for the Laplace, kurtosis 6), so 3% is > 5 standard errors.
_N = 40_000


def test_central_gaussian_noise_on_zero_updates_has_std_z_c_over_cohort():
  process = _process(_N, dp_noise_multiplier=0.7, dp_clip_norm=2.0, clients_per_round=5)
  noise = np.asarray(_run(process, [np.zeros(_N)] * 5).result)
  assert noise.std() == pytest.approx(0.7 * 2.0 / 5, rel=0.03)
  assert abs(noise.mean()) < 5 * 0.28 / np.sqrt(_N)
  assert np.mean(np.abs(noise) < 0.28) == pytest.approx(0.6827, abs=0.01)  # Normal, 1 sigma.


def test_central_laplace_noise_on_zero_updates_has_the_laplace_scale():
  process = _process(_N, dp_mechanism='laplace', dp_noise_multiplier=0.5, dp_clip_norm=4.0,
                     clients_per_round=4, client_sampling='poisson', dp_accountant='pld')
  noise = np.asarray(_run(process, [np.zeros(_N)] * 4).result)
  scale = 0.5 * 4.0 / 4
  assert np.mean(np.abs(noise)) == pytest.approx(scale, rel=0.03)  # E|X| = b.
  assert noise.std() == pytest.approx(np.sqrt(2) * scale, rel=0.03)


def test_local_noise_is_per_client_and_averages_down():
  process = _process(_N, dp_mode='local', dp_noise_multiplier=0.5, dp_clip_norm=1.0)
  values = [np.full(_N, 1e-4 * (i + 1)) for i in range(4)]  # Distinct, tiny updates.
  noise = np.asarray(_run(process, values).result) - np.mean([v[0] for v in values])
  assert noise.std() == pytest.approx(0.5 / np.sqrt(4), rel=0.03)


def test_noise_is_fresh_each_round_and_repeats_with_the_seed():
  zeros = [np.zeros(1000)] * 3
  first = _run(_process(1000, dp_noise_multiplier=1.0, clients_per_round=3), zeros)
  second = _run(_process(1000, dp_noise_multiplier=1.0, clients_per_round=3), zeros,
                first.state)
  again = _run(_process(1000, dp_noise_multiplier=1.0, clients_per_round=3), zeros)
  other = _run(_process(1000, dp_noise_multiplier=1.0, clients_per_round=3, seed=1), zeros)
  np.testing.assert_array_equal(first.result, again.result)
  assert abs(np.corrcoef(first.result, second.result)[0, 1]) < 0.1
  assert abs(np.corrcoef(first.result, other.result)[0, 1]) < 0.1


def test_adaptive_clipping_events_compose_to_the_ledgers_noise_multiplier():
  process = _process(3, dp_noise_multiplier=1.0, dp_adaptive_clip=True, clients_per_round=5)
  output = _run(process, [np.ones(3)] * 5)
  event = differential_privacy.extract_dp_event_from_state(output.state)
  assert isinstance(event, dp_accounting.ComposedDpEvent)  # Value noise and count noise.
  # As Python floats: dp_accounting 0.4.3 silently accounts only the first Gaussian of a
  # composition whose multipliers are numpy float32, as TFF's state holds them.
  event = dp_accounting.ComposedDpEvent(
      [dp_accounting.GaussianDpEvent(float(e.noise_multiplier)) for e in event.events])
  ours = accounting.PrivacyPlan('gaussian', 'central', 'poisson', 100, 5, 1e-5, 'rdp')
  theirs = rdp.RdpAccountant()
  theirs.compose(dp_accounting.SelfComposedDpEvent(
      dp_accounting.PoissonSampledDpEvent(0.05, event), 50))
  assert ours.epsilon(1.0, 50) == pytest.approx(theirs.get_epsilon(1e-5), rel=1e-3)
  # Every norm (sqrt 3) is above the clip (1), so the clip grows toward the median.
  assert output.measurements['dp_query_metrics']['clip'] > 1.0


_LAPLACE = dict(dp_mechanism='laplace', client_sampling='poisson', dp_accountant='pld')


# Clients sending the same update (here all zeros, as non-finite updates become) draw their
# own noise: the mean of k clients' noise has std sigma / sqrt(k), sigma = z * clip for the
# Gaussian and sqrt(2) * z * clip for the Laplace. Over 40,000 coordinates the sample std's
# relative standard error is at most sqrt(5 / (4n)) = 0.56% (Laplace, k = 1), so 3% is > 5
# standard errors; noise seeded by the update gave 4 zero updates one draw: sigma, not sigma/2.
@pytest.mark.parametrize('flags, sigma', [({}, 0.5), (_LAPLACE, np.sqrt(2) * 0.5)])
@pytest.mark.parametrize('k', [1, 4])
def test_identical_updates_get_independent_local_noise(flags, sigma, k):
  process = _process(_N, dp_mode='local', dp_noise_multiplier=0.5, dp_clip_norm=1.0, **flags)
  update_seeds = round_plan.update_seeds(0, 1, [f'c{i}' for i in range(k)]).values()
  mean = np.asarray(_run(process, [np.zeros(_N)] * k, update_seeds=list(update_seeds)).result)
  assert mean.std() == pytest.approx(sigma / np.sqrt(k), rel=0.03)
  assert abs(mean.mean()) < 5 * sigma / np.sqrt(k * _N)


def test_local_noise_repeats_for_seed_round_and_client_and_not_for_the_update():
  n = 10_000
  process = _process(n, dp_mode='local', dp_noise_multiplier=1.0, dp_clip_norm=1.0)

  def noise(seed, round_num, client, update=np.zeros(n)):
    (update_seed,) = round_plan.update_seeds(seed, round_num, [client]).values()
    return np.asarray(_run(process, [update], update_seeds=[update_seed]).result) - update

  first = noise(0, 1, 'a')
  np.testing.assert_array_equal(first, noise(0, 1, 'a'))
  # Another update (norm 0.5 < clip: unclipped) gets the same noise: not a function of data.
  np.testing.assert_allclose(noise(0, 1, 'a', update=np.full(n, 0.005)), first, atol=1e-6)
  # Another seed, round or client: independent draws (correlation's standard error 0.01).
  for other in (noise(1, 1, 'a'), noise(0, 2, 'a'), noise(0, 1, 'b')):
    assert abs(np.corrcoef(first, other)[0, 1]) < 0.05
