"""Seeded noise: the stated distributions (within statistical bounds), shaped like the
structure, the same for the same seed, independent across tensors, streams and seeds."""

import numpy as np
import pytest
import tensorflow as tf

from tff_experiments.core import noise

_N = 40_000
_SEED = tf.constant([7, 3], tf.int64)


def _structure():
  return [tf.zeros([_N]), tf.zeros([200, 200])]  # Two tensors of 40,000 values each.


@pytest.mark.parametrize('draw, std', [
    (lambda s, seed: noise.gaussian_noise(s, stddev=2.0, seed=seed), 2.0),
    (lambda s, seed: noise.laplace_noise(s, scale=2.0, seed=seed), 2.0 * np.sqrt(2)),  # b sqrt 2
])
def test_noise_has_the_stated_spread_and_shape(draw, std):
  drawn = draw(_structure(), _SEED)
  assert [t.shape for t in drawn] == [(_N,), (200, 200)]
  for t in drawn:
    values = np.asarray(t).ravel()
    # Standard errors at n = 40,000: the mean's std/200; the std's std/283 (Gaussian) or
    # std/179 (Laplace, kurtosis 6). Within 5 of them.
    assert abs(values.mean()) < 5 * std / 200
    assert abs(values.std() - std) < 5 * std / 179


def test_laplace_noise_has_mean_absolute_value_its_scale():
  values = np.asarray(noise.laplace_noise([tf.zeros([_N])], scale=0.5, seed=_SEED)[0])
  assert abs(np.abs(values).mean() - 0.5) < 5 * 0.5 / np.sqrt(_N)  # |X| ~ Exp(b): std b.


def test_the_same_seed_draws_the_same_and_tensors_streams_and_seeds_differ():
  first = noise.gaussian_noise(_structure(), stddev=1.0, seed=_SEED)
  again = noise.gaussian_noise(_structure(), stddev=1.0, seed=_SEED)
  other_stream = noise.gaussian_noise(_structure(), stddev=1.0, seed=_SEED, stream=1)
  other_seed = noise.gaussian_noise(_structure(), stddev=1.0,
                                    seed=tf.constant([7, 4], tf.int64))
  assert all(np.array_equal(a, b) for a, b in zip(first, again))
  head = lambda t: np.asarray(t).ravel()[:1000]
  draws = [head(first[0]), head(first[1]), head(other_stream[0]), head(other_seed[0])]
  for i in range(len(draws)):
    for j in range(i + 1, len(draws)):
      assert abs(np.corrcoef(draws[i], draws[j])[0, 1]) < 0.15  # Independent: |r| ~ 0.03.
