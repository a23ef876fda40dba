"""Shamir sharing: any t shares rebuild the secret, fewer reveal nothing about it."""

import itertools

import numpy as np
import pytest
from scipy import stats

from tff_experiments.secagg import shamir


def test_any_t_of_n_shares_rebuild_the_secret():
  secret = int.from_bytes(bytes(range(32)), 'little')
  shares = shamir.split(secret, threshold=3, xs=[1, 2, 3, 4, 5], rng=np.random.default_rng(0))
  for subset in itertools.combinations(shares.items(), 3):
    assert shamir.reconstruct(dict(subset), threshold=3) == secret


def test_fewer_than_t_shares_are_refused():
  shares = shamir.split(7, threshold=3, xs=[1, 2, 3], rng=np.random.default_rng(0))
  with pytest.raises(ValueError, match='cannot reconstruct'):
    shamir.reconstruct({1: shares[1], 2: shares[2]}, threshold=3)


def test_t_minus_1_shares_are_consistent_with_every_secret():
  shares = shamir.split(123, threshold=3, xs=[1, 2, 3], rng=np.random.default_rng(1))
  two = {1: shares[1], 2: shares[2]}
  for candidate in (0, 1, 2**255):  # A polynomial of degree 2 through (0, candidate) and two.
    points = {**two, 3: None}
    # Lagrange through (0, candidate), (1, y1), (2, y2) evaluated at 3, then rebuilt at 0.
    y3 = 0
    basis = {0: candidate, 1: two[1], 2: two[2]}
    for i, yi in basis.items():
      term = yi
      for j in basis:
        if j != i:
          term = term * (3 - j) * pow(i - j, -1, shamir.PRIME) % shamir.PRIME
      y3 = (y3 + term) % shamir.PRIME
    points[3] = y3
    assert shamir.reconstruct(points, threshold=3) == candidate


def test_one_share_of_a_2_of_n_secret_is_independent_of_the_secret():
  # The low byte of share x=1 over many sharings: the same (uniform) law for two secrets.
  def low_bytes(secret, seed):
    rng = np.random.default_rng(seed)
    return [shamir.split(secret, threshold=2, xs=[1, 2], rng=rng)[1] % 16 for _ in range(3000)]
  a, b = np.bincount(low_bytes(0, 0), minlength=16), np.bincount(low_bytes(2**250 + 5, 1),
                                                                   minlength=16)
  assert stats.chi2_contingency(np.stack([a, b]))[1] > 1e-3
  assert stats.chisquare(a)[1] > 1e-3


def test_sharing_is_a_function_of_the_generator_only():
  draw = lambda seed: shamir.split(99, threshold=4, xs=[1, 5, 9, 13],
                                   rng=np.random.default_rng(seed))
  assert draw(3) == draw(3) and draw(3) != draw(4)
