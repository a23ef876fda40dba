"""Seed derivation: a pure function of (seed, purpose, round, client), independent streams."""

import numpy as np
import pytest
import tensorflow_federated as tff

from tff_experiments.core import seeds


def test_derive_is_deterministic_and_separates_every_coordinate():
  base = dict(purpose='shuffle', round_num=3, client='c1')
  first = seeds.derive(7, **base)
  assert first == seeds.derive(7, **base)
  variants = [seeds.derive(8, **base), seeds.derive(7, **{**base, 'purpose': 'dropout'}),
              seeds.derive(7, **{**base, 'round_num': 4}),
              seeds.derive(7, **{**base, 'client': 'c2'})]
  assert len({first, *variants}) == 5
  assert all(0 <= s < 2**63 for s in [first, *variants])


def test_streams_are_uncorrelated():
  # 2,000 clients' first uniform draws: mean 1/2 within 5 sigma (sigma = sqrt(1/12/n)).
  draws = [seeds.generator(0, purpose='p', client=i).random() for i in range(2000)]
  assert abs(np.mean(draws) - 0.5) < 5 * np.sqrt(1 / 12 / 2000)


def test_numpy_seeds_become_python_ints_and_bad_seeds_are_refused():
  # TFF's sampler seeds only Python ints: an np.int64 used to give unseeded cohorts.
  assert type(seeds.check_seed(np.int64(3))) is int
  for bad in (-1, seeds.MAX_SEED + 1, 1.5, True):
    with pytest.raises(ValueError, match='--seed'):
      seeds.check_seed(bad)


def test_tff_sampler_is_unseeded_for_numpy_ints_which_is_why_we_convert():
  ids = [str(i) for i in range(1000)]
  numpy_seeded = [tff.simulation.build_uniform_sampling_fn(ids, random_seed=np.int64(1))(1, 10)
                  for _ in range(2)]
  assert numpy_seeded[0] != numpy_seeded[1]  # TFF's pitfall, still there.
  converted = [tff.simulation.build_uniform_sampling_fn(
      ids, random_seed=seeds.check_seed(np.int64(1)))(1, 10) for _ in range(2)]
  assert converted[0] == converted[1]
