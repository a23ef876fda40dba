"""Fixed-point encoding and PRG masks against numpy: exact integers, no wrap, uniform masks."""

import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from tff_experiments.secagg import masking


def _numpy_encode(v, *, clip, levels, bits):
  q = np.round(np.clip(v.astype(np.float64), -clip, clip) * (levels / clip)).astype(np.int64)
  return q % 2**bits


def test_levels_leave_room_for_n_clients():
  for bits, n in [(32, 10), (16, 100), (8, 3)]:
    levels = int(masking.levels(bits, n))
    assert n * levels <= 2**(bits - 1) - 1 < n * (levels + 1)


@pytest.mark.parametrize('bits', [8, 20, 32])
def test_encoding_matches_numpy_and_a_sum_decodes_exactly(bits):
  rng = np.random.default_rng(bits)
  n, clip = 5, 3.0
  values = [rng.normal(scale=2.0, size=(4, 3)).astype(np.float32) for _ in range(n)]
  levels = masking.levels(bits, n)
  encoded = [masking.encode(v, clip=clip, levels_=levels, bits=bits).numpy() for v in values]
  for v, e in zip(values, encoded):
    np.testing.assert_array_equal(e, _numpy_encode(v, clip=clip, levels=int(levels), bits=bits))
  total = sum(encoded) % 2**bits
  decoded = masking.decode(total, clip=clip, levels_=levels, bits=bits, dtypes=tf.float32)
  signed = sum(((e + 2**(bits - 1)) % 2**bits) - 2**(bits - 1) for e in encoded)
  np.testing.assert_array_equal(decoded, (signed * (clip / int(levels))).astype(np.float32))
  step = clip / int(levels)  # Each client's rounding is at most half a step.
  clipped = sum(np.clip(v, -clip, clip) for v in values)
  assert np.abs(decoded - clipped).max() <= n * step / 2 + 1e-6


def test_the_largest_contributions_of_a_full_cohort_never_wrap():
  bits, n, clip = 8, 7, 1.0
  levels = masking.levels(bits, n)
  for sign in (1.0, -1.0):
    extreme = masking.encode(tf.fill([3], sign * 5.0), clip=clip, levels_=levels, bits=bits)
    total = masking.wrap(extreme * n, bits)
    decoded = masking.decode(total, clip=clip, levels_=levels, bits=bits, dtypes=tf.float32)
    np.testing.assert_allclose(decoded, sign * n * clip)


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
