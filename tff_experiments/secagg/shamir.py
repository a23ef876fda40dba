"""Shamir t-of-n secret sharing over the prime field GF(2^521 - 1), in pure Python.

A secret (an integer below the prime, e.g. a 32-byte key) is the constant term of a random
polynomial of degree t - 1; share x is the polynomial at x (x = 1, 2, ...). Any t shares give
the secret back by Lagrange interpolation at 0; fewer than t reveal nothing about it (every
secret is consistent with them). The field is the Mersenne prime 2^521 - 1, large enough for a
32-byte secret in one element. Coefficients come from a caller's seeded generator, never from
the clock or the OS.
"""

from typing import Mapping, Sequence

import numpy as np

PRIME = 2**521 - 1
SHARE_BYTES = (PRIME.bit_length() + 7) // 8  # One field element: 66 bytes.


def _random_element(rng: np.random.Generator) -> int:
  """A uniform element of the field (rejection sampling over 521-bit integers)."""
  while True:
    value = int.from_bytes(rng.bytes(SHARE_BYTES), 'little') & PRIME  # The low 521 bits.
    if value < PRIME:
      return value


def split(secret: int, *, threshold: int, xs: Sequence[int],
          rng: np.random.Generator) -> dict[int, int]:
  """Shares of `secret` at the points `xs` (distinct, nonzero): {x: f(x)}, any `threshold`
  of which reconstruct it."""
  if not 0 <= secret < PRIME:
    raise ValueError('the secret must be an integer in [0, 2^521 - 1)')
  if threshold < 1:
    raise ValueError(f'the threshold must be >= 1, got {threshold}')
  if len(set(xs)) != len(xs) or any(not 0 < x < PRIME for x in xs):
    raise ValueError('share points must be distinct and nonzero')
  coefficients = [secret] + [_random_element(rng) for _ in range(threshold - 1)]

  def evaluate(x: int) -> int:
    value = 0
    for coefficient in reversed(coefficients):  # Horner.
      value = (value * x + coefficient) % PRIME
    return value

  return {x: evaluate(x) for x in xs}


def reconstruct(shares: Mapping[int, int], *, threshold: int) -> int:
  """The secret from at least `threshold` shares {x: f(x)} (the first `threshold` are used);
  ValueError with fewer."""
  if len(shares) < threshold:
    raise ValueError(f'{len(shares)} shares cannot reconstruct a {threshold}-of-n secret')
  points = list(shares.items())[:threshold]
  secret = 0
  for i, (x_i, y_i) in enumerate(points):
    numerator, denominator = 1, 1
    for j, (x_j, _) in enumerate(points):
      if i != j:
        numerator = numerator * (-x_j) % PRIME
        denominator = denominator * (x_i - x_j) % PRIME
    secret = (secret + y_i * numerator * pow(denominator, -1, PRIME)) % PRIME
  return secret
