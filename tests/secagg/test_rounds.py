"""A round's protocol messages: each client's rounding seed is its own, repeats for the same
(seed, round, client), and makes identical updates round independently."""

import numpy as np
import pytest
import tensorflow as tf

from tff_experiments import settings
from tff_experiments.secagg import masking
from tff_experiments.secagg import rounds

_IDS = [f'client_{i}' for i in range(5)]


def _rounding_seeds(mode, *, seed, round_num, ids=_IDS):
  config = settings.from_flat({'secure_aggregation': mode, 'clients_per_round': len(ids)})
  setup = rounds.protocol_setup(config.secure_aggregation, seed=seed, client_ids=ids,
                                round_num=round_num)
  return {c: tuple(m['rounding_seed']) for c, m in zip(setup.survivors, setup.clients)}, setup


@pytest.mark.parametrize('mode', ['masking', 'two_server'])
def test_rounding_seeds_are_per_seed_round_and_client_and_apart_from_the_masks(mode):
  first, setup = _rounding_seeds(mode, seed=3, round_num=2)
  again, _ = _rounding_seeds(mode, seed=3, round_num=2)
  assert first == again
  reordered, _ = _rounding_seeds(mode, seed=3, round_num=2, ids=_IDS[::-1] + ['extra'])
  assert all(reordered[c] == first[c] for c in _IDS)  # A client's own, whoever else joins.
  others = [_rounding_seeds(mode, seed=s, round_num=r)[0] for s, r in ((3, 3), (4, 2))]
  seen = [s for seeds in [first, *others] for s in seeds.values()]
  assert len(set(seen)) == len(seen)  # Distinct across clients, rounds and run seeds.
  for message in setup.clients:  # Never one of the seeds the server or a peer may learn.
    secrets = {tuple(message['self_seed'])} | {tuple(p) for p in message['pair_seeds']}
    assert tuple(message['rounding_seed']) not in secrets


def test_identical_updates_of_two_clients_round_independently():
  seeds, _ = _rounding_seeds('masking', seed=0, round_num=1)
  update = [np.full(20_000, 0.25, np.float32)]  # Half a step: each coordinate is a coin flip.
  flips = []
  for client in _IDS[:2]:
    [q], _ = masking.encode(update, ranges=tf.constant([1.0], tf.float64), levels_=2, bits=8,
                            rounding_seed=tf.constant(seeds[client], tf.int64), stream=0)
    flips.append(q.numpy())
  assert set(np.unique(flips)) == {0, 1}
  agree = np.mean(flips[0] == flips[1])  # 1/2 if independent; 1 if one stream served both.
  assert abs(agree - 0.5) < 5 * 0.5 / np.sqrt(len(flips[0]))
