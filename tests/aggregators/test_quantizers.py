"""The b-bit quantizer and Hadamard rotation against closed forms and statistical bounds."""

import math

import numpy as np
import pytest
import scipy.linalg
import scipy.stats
import tensorflow as tf

from tff_experiments.aggregators import quantizers


def _seed(i):
  return tf.constant([7, i], tf.int64)


def _decode(x, i, **kwargs):
  out, _ = quantizers.quantize_dequantize(tf.constant(x, tf.float32), seed=_seed(i), **kwargs)
  return out.numpy()


def test_hadamard_matches_scipy_and_is_its_own_inverse():
  x = np.random.default_rng(0).normal(size=16).astype(np.float32)
  want = scipy.linalg.hadamard(16) @ x / 4.0
  np.testing.assert_allclose(quantizers.hadamard(tf.constant(x)).numpy(), want, atol=1e-5)
  np.testing.assert_allclose(quantizers.hadamard(quantizers.hadamard(tf.constant(x))).numpy(),
                             x, atol=1e-5)


@pytest.mark.parametrize('size,padded', [(1000, 1024), (10, 16), (156_800, 159_744)])
def test_rotation_pads_to_whole_blocks_keeps_the_norm_and_inverts_exactly(size, padded):
  x = tf.constant(np.random.default_rng(1).normal(size=size), tf.float32)
  rotated = quantizers.rotate(x, _seed(3))
  assert rotated.shape == (padded,) == (quantizers.padded_size(size),)
  assert padded - size < quantizers.MAX_BLOCK
  np.testing.assert_allclose(np.linalg.norm(rotated), np.linalg.norm(x), rtol=1e-4)
  np.testing.assert_allclose(quantizers.unrotate(rotated, size, _seed(3)), x, atol=1e-4)


def test_blockwise_hadamard_is_scipy_per_row():
  x = np.random.default_rng(8).normal(size=(3, 8)).astype(np.float32)
  want = x @ scipy.linalg.hadamard(8).T / math.sqrt(8)
  np.testing.assert_allclose(quantizers.hadamard(tf.constant(x)).numpy(), want, atol=1e-5)


def test_stochastic_rounding_is_unbiased_within_a_hoeffding_bound():
  x = np.random.default_rng(2).uniform(-1, 1, size=64).astype(np.float32)
  bits, trials = 2, 4000
  step = (x.max() - x.min()) / (2**bits - 1)
  errors = np.mean([_decode(x, i, bits=bits, stochastic=True, rotation=False) - x
                    for i in range(trials)], axis=0)
  # Each trial's error lies in an interval of length `step`: Hoeffding with a union bound over
  # the 64 coordinates, failure probability 1e-6: eps = step * sqrt(ln(2 * 64 / 1e-6) / 2N).
  bound = step * math.sqrt(math.log(2 * 64 / 1e-6) / (2 * trials))
  assert np.max(np.abs(errors)) <= bound


def test_stochastic_rounding_variance_is_the_bernoulli_variance_at_most_step_squared_over_4():
  x = np.random.default_rng(3).uniform(-1, 1, size=32).astype(np.float32)
  bits, trials = 3, 4000
  step = (x.max() - x.min()) / (2**bits - 1)
  draws = np.array([_decode(x, i, bits=bits, stochastic=True, rotation=False)
                    for i in range(trials)])
  fraction = (x - x.min()) / step % 1.0
  want = fraction * (1 - fraction) * step**2  # Closed form for rounding up w.p. `fraction`.
  got = draws.var(axis=0)
  assert np.all(got <= step**2 / 4 * 1.1)
  np.testing.assert_allclose(got, want, atol=0.02 * step**2)  # ~5 sigma of the estimate.


def test_deterministic_rounding_is_within_half_a_step_and_seed_free():
  x = np.random.default_rng(4).normal(size=100).astype(np.float32)
  step = (x.max() - x.min()) / 255
  a = _decode(x, 1, bits=8, stochastic=False, rotation=False)
  b = _decode(x, 2, bits=8, stochastic=False, rotation=False)
  np.testing.assert_array_equal(a, b)
  assert np.max(np.abs(a - x)) <= step / 2 * (1 + 1e-4)


def test_error_falls_with_bits_and_16_bits_is_nearly_exact():
  x = np.random.default_rng(5).normal(size=500).astype(np.float32)
  mse = [np.mean([np.mean((_decode(x, i, bits=b, stochastic=True, rotation=False) - x)**2)
                  for i in range(5)]) for b in (1, 2, 4, 8, 16)]
  assert all(a > b for a, b in zip(mse, mse[1:])), mse
  step16 = (x.max() - x.min()) / (2**16 - 1)
  assert np.max(np.abs(_decode(x, 0, bits=16, stochastic=True, rotation=False) - x)) <= (
      step16 * 1.01 + 1e-6)


def test_rotation_lowers_the_error_on_a_spiky_vector():
  x = np.random.default_rng(6).normal(scale=0.01, size=1000).astype(np.float32)
  x[3] = 50.0  # One large coordinate: without rotation the range, and so the step, is huge.
  mse = lambda rotation: np.mean([np.mean((_decode(x, i, bits=4, stochastic=True,
                                                   rotation=rotation) - x)**2)
                                  for i in range(10)])
  assert mse(True) < 0.2 * mse(False)


@pytest.mark.parametrize('bits', [1, 3])
def test_entropy_bits_is_n_times_the_empirical_entropy(bits):
  symbols = np.random.default_rng(7).integers(0, 2**bits, size=200)
  counts = np.bincount(symbols, minlength=2**bits)
  want = 200 * scipy.stats.entropy(counts, base=2)
  got = quantizers.entropy_bits(tf.constant(symbols, tf.int32), bits=bits).numpy()
  np.testing.assert_allclose(got, want, rtol=1e-5)
  assert quantizers.entropy_bits(tf.zeros([10], tf.int32), bits=bits).numpy() == 0.0
