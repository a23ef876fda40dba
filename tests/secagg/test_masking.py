"""Fixed-point encoding and PRG masks against numpy: unbiased stochastic rounding within its
closed-form error, no wrap, seeded draws, uniform masks."""

import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from tff_experiments.secagg import masking


def _encode(values, *, clip, bits, n, seed, stream=0):
  """masking.encode of a list of float arrays with one fixed range; (ints mod 2^b, error)."""
  ranges = tf.constant([clip] * len(values), tf.float64)
  encoded, error = masking.encode(values, ranges=ranges, levels_=masking.levels(bits, n),
                                  bits=bits, rounding_seed=tf.constant(seed, tf.int64),
                                  stream=stream)
  return [e.numpy() for e in encoded], float(error)


def _signed(q, bits):
  return ((q + 2**(bits - 1)) % 2**bits) - 2**(bits - 1)


def _rounding_moments(values, *, clip, levels):
  """Numpy: per coordinate, the step, p = frac(v L / R) of the clipped v, and the mean and
  variance of one client's squared rounding error (error = step (B - p), B ~ Bernoulli(p))."""
  x = np.clip(values.astype(np.float64), -clip, clip) * (levels / clip)
  p = x - np.floor(x)
  step = clip / levels
  mean = step**2 * p * (1 - p)
  fourth = step**4 * p * (1 - p) * ((1 - p)**3 + p**3)
  return step, p, mean, fourth - mean**2


def test_levels_leave_room_for_n_clients():
  for bits, n in [(32, 10), (16, 100), (8, 3), (8, 127)]:
    levels = int(masking.levels(bits, n))
    assert levels == masking.level_count(bits, n)
    assert n * levels <= 2**(bits - 1) - 1 < n * (levels + 1)


@pytest.mark.parametrize('bits', [8, 16, 32])
def test_stochastic_rounding_is_unbiased(bits):
  n, clip = 10, 2.0
  levels = masking.level_count(bits, n)
  step = clip / levels
  # Off the grid, on it, at and beyond the range (clipped to it), negative, tiny.
  v = np.array([0.3 * step, 0.5 * step, 7.9 * step, -2.25 * step, 3 * step, 1e-3 * step,
                clip - 0.4 * step, clip, -clip, 5.0, -7.0, 0.0, 0.61, -1.37])
  draws, repeats = 200, 50  # 10,000 independent roundings of every coordinate.
  tiled = np.tile(v, (repeats, 1)).astype(np.float32)
  decoded = []
  for seed in range(draws):
    [q], _ = _encode([tiled], clip=clip, bits=bits, n=n, seed=[seed, 17])
    decoded.append(_signed(q, bits) * step)
  decoded = np.concatenate(decoded)
  want = np.clip(v.astype(np.float32).astype(np.float64), -clip, clip)
  _, p, _, _ = _rounding_moments(v.astype(np.float32), clip=clip, levels=levels)
  standard_error = step * np.sqrt(p * (1 - p) / len(decoded))
  # 5 standard errors per coordinate (each fails with probability < 6e-7); exact on the grid.
  assert np.all(np.abs(decoded.mean(axis=0) - want) <= 5 * standard_error + 1e-12 * clip)
  assert np.all(np.abs(decoded - want) < step * (1 + 1e-9))  # Never a full step away.
  if bits == 8:  # A coarse grid: the draws of an off-grid value really do spread.
    assert len(np.unique(decoded[:, 0])) == 2


@pytest.mark.parametrize('bits', [8, 20, 32])
def test_a_decoded_sum_is_the_numpy_sum_within_the_closed_form_error(bits):
  rng = np.random.default_rng(bits)
  n, clip = 5, 3.0
  values = [rng.normal(scale=2.0, size=(40, 30)).astype(np.float32) for _ in range(n)]
  levels = masking.level_count(bits, n)
  encoded, errors = zip(*(_encode([v], clip=clip, bits=bits, n=n, seed=[i, bits])
                          for i, v in enumerate(values)))
  for (q,), v, error in zip(encoded, values, errors):  # Each client's error, as reported.
    assert q.min() >= 0 and q.max() < 2**bits
    mine = _signed(q, bits) * (clip / levels) - v.astype(np.float64)
    np.testing.assert_allclose(error, np.sum(mine**2), rtol=1e-9)
  total = sum(q for (q,) in encoded) % 2**bits
  [decoded] = masking.decode([tf.constant(total)], ranges=tf.constant([clip], tf.float64),
                             levels_=masking.levels(bits, n), bits=bits, dtypes=[tf.float64])
  want = sum(np.clip(v.astype(np.float64), -clip, clip) for v in values)
  step = clip / levels
  assert np.abs(decoded - want).max() < n * step  # Each client's rounding is below a step.
  # The squared error of the sum: its mean and variance in closed form (independent clients).
  moments = [_rounding_moments(v, clip=clip, levels=levels) for v in values]
  mean = sum(m[2] for m in moments).sum()  # E (sum of errors)^2 = sum of the variances.
  p = np.stack([m[1] for m in moments])
  # Var of (sum_i e_i)^2 per coordinate: sum E e^4 + 3 sum_{i != j} var_i var_j - (sum var)^2.
  var_i = step**2 * p * (1 - p)
  fourth = step**4 * p * (1 - p) * ((1 - p)**3 + p**3)
  per_coordinate = (fourth.sum(0) + 3 * (var_i.sum(0)**2 - (var_i**2).sum(0))
                    - var_i.sum(0)**2)
  observed = np.sum((decoded - want)**2)
  assert abs(observed - mean) <= 6 * np.sqrt(per_coordinate.sum())
  # What the clients report adds their clipping (a clipped coordinate rounds exactly to +-L).
  clipping = sum(np.sum((np.clip(v, -clip, clip) - v.astype(np.float64))**2) for v in values)
  assert clipping > 0
  assert abs(sum(errors) - mean - clipping) <= 6 * np.sqrt(sum(m[3] for m in moments).sum())


def test_rounding_draws_repeat_for_a_seed_and_differ_across_seeds_and_streams():
  v = [np.linspace(-1, 1, 500).astype(np.float32)]
  once, _ = _encode(v, clip=1.0, bits=8, n=10, seed=[3, 4])
  again, _ = _encode(v, clip=1.0, bits=8, n=10, seed=[3, 4])
  np.testing.assert_array_equal(once[0], again[0])
  for seed, stream in (([3, 5], 0), ([4, 4], 0), ([3, 4], 1)):
    other, _ = _encode(v, clip=1.0, bits=8, n=10, seed=seed, stream=stream)
    assert np.mean(other[0] != once[0]) > 0.2  # About half the off-grid coordinates move.


def test_integers_at_range_l_are_exact():
  bits, n = 32, 7
  levels = masking.level_count(bits, n)
  weights = np.array([0, 1, 600, 59999, levels], np.float64)
  [q], error = _encode([weights], clip=float(levels), bits=bits, n=n, seed=[1, 2])
  np.testing.assert_array_equal(_signed(q, bits), weights)
  assert error == 0


def test_the_largest_contributions_of_a_full_cohort_never_wrap():
  bits, n, clip = 8, 7, 1.0
  for sign in (1.0, -1.0):
    [extreme], _ = _encode([np.full(3, sign * 5.0, np.float32)], clip=clip, bits=bits, n=n,
                           seed=[0, 0])
    total = (extreme * n) % 2**bits
    [decoded] = masking.decode([tf.constant(total)], ranges=tf.constant([clip], tf.float64),
                               levels_=masking.levels(bits, n), bits=bits,
                               dtypes=[tf.float32])
    np.testing.assert_allclose(decoded, sign * n * clip)


def test_too_few_levels_names_the_numbers():
  message = masking.too_few_levels(8, 200, '--clients_per_round=200')
  assert message.startswith('--secagg_bits=8 leaves each of --clients_per_round=200 clients '
                            'L = floor((2^7 - 1) / 200) = 0 levels')


def test_prg_masks_are_uniform_on_z_2b_and_seeded():
  draws = masking.prg(tf.constant([7, 9], tf.int64), stream=0, index=0, shape=[200_000],
                      bits=8).numpy()
  assert draws.min() >= 0 and draws.max() < 256
  assert stats.chisquare(np.bincount(draws, minlength=256))[1] > 1e-3
  again = masking.prg(tf.constant([7, 9], tf.int64), stream=0, index=0, shape=[5], bits=8)
  np.testing.assert_array_equal(again, draws[:5])
  other = [masking.prg(tf.constant(s, tf.int64), stream=t, index=i, shape=[50], bits=32)
           for s, t, i in [([7, 9], 1, 0), ([7, 9], 0, 1), ([7, 10], 0, 0)]]
  assert all(not np.array_equal(o, draws[:50]) for o in other)


def test_signed_mask_sums_cancel_between_a_pair():
  seeds, like = tf.constant([[1, 2], [3, 4]], tf.int64), [tf.zeros([6]), tf.zeros([2, 2])]
  plus = masking.signed_mask_sum(seeds, tf.constant([1, -1], tf.int64), like, stream=0, bits=32)
  minus = masking.signed_mask_sum(seeds, tf.constant([-1, 1], tf.int64), like, stream=0, bits=32)
  for p, m in zip(plus, minus):
    np.testing.assert_array_equal(masking.wrap(p + m, 32), np.zeros(p.shape))
  empty = masking.signed_mask_sum(tf.zeros([0, 2], tf.int64), tf.zeros([0], tf.int64), like,
                                  stream=0, bits=32)
  assert all(not np.any(e) for e in empty)
