"""The measured range: each client's bucket and the round's range against a numpy transcription
of the rule (the first half-octave edge at or above the largest |coordinate|)."""

import math

import numpy as np
import tensorflow as tf

from tff_experiments.secagg import ranges


def _edge_at_or_above(m):
  """2^(k / 2) for the smallest integer k with 2^(k / 2) >= m, within [2^-24, 2^24]."""
  if not math.isfinite(m):
    return 2.0**24
  if m <= 2.0**-24:
    return 2.0**-24
  k = math.ceil(2 * math.log2(m))
  while 2.0**((k - 1) / 2) >= m:  # log2's rounding, either way.
    k -= 1
  while 2.0**(k / 2) < m:
    k += 1
  return 2.0**(min(k, 48) / 2)


def _bucket(counts_row):
  [index] = np.flatnonzero(counts_row)
  return ranges.EDGES[index]


def test_each_tensor_gets_the_first_edge_at_or_above_its_largest_coordinate():
  rng = np.random.default_rng(0)
  cases = [rng.normal(scale=s, size=(3, 4)) for s in (1e-3, 0.7, 40.0, 3e5)]
  cases += [np.array([2.0**-3, -0.1]), np.array([-(2.0**1.5)]), np.zeros(5), np.array([1e-12]),
            np.array([1e9]), np.array([0.5, np.nan]), np.array([-np.inf])]
  counts = ranges.histogram([tf.constant(c, tf.float32) for c in cases]).numpy()
  assert counts.shape == (len(cases), ranges.BUCKETS) and (counts.sum(axis=1) == 1).all()
  for row, case in zip(counts, cases):
    largest = float(np.max(np.abs(case.astype(np.float32).astype(np.float64))))
    assert _bucket(row) == _edge_at_or_above(largest)
    if 2.0**-24 <= largest <= 2.0**24:  # Covers it, within a factor sqrt(2).
      assert largest <= _bucket(row) < math.sqrt(2) * largest * (1 + 1e-12)


def test_the_range_is_the_highest_edge_any_client_reached():
  rng = np.random.default_rng(1)
  clients = [[rng.normal(scale=s, size=6), rng.normal(scale=10 * s, size=(2, 2))]
             for s in (0.01, 0.3, 0.02)]
  total = sum(ranges.histogram([tf.constant(t) for t in c]).numpy() for c in clients)
  got = ranges.from_counts(tf.constant(total)).numpy()
  for t in range(2):
    want = max(_edge_at_or_above(float(np.max(np.abs(c[t])))) for c in clients)
    assert got[t] == want
  assert ranges.from_counts(tf.zeros([1, ranges.BUCKETS], tf.int64)).numpy()[0] == 2.0**-24
