"""The masking protocol's cryptography: pair seeds agree, masks cancel, drop-outs are unmasked
from the survivors' shares alone, and too few survivors abort."""

import numpy as np
import pytest

from tff_experiments.secagg import protocol

_IDS = [f'client_{i}' for i in range(8)]
_MOD = 2**32


def _complete(ids):
  return protocol.masking_graph(ids, neighbors=None, rng=None)


def _prg(seed):
  """An independent PRG (numpy's PCG64, not TF's Philox): the cancellation is algebraic."""
  words = np.array(seed, np.int64).view(np.uint64)
  return np.random.default_rng(list(words)).integers(0, _MOD, 6, dtype=np.int64)


def _masked_total(result):
  """sum over survivors of (self mask + signed pair masks), minus the server's correction."""
  total = sum(_prg(result.inputs[c].self_seed)
              + sum(sign * _prg(s) for s, sign in zip(result.inputs[c].pair_seeds,
                                                       result.inputs[c].pair_signs))
              for c in result.survivors)
  correction = sum(sign * _prg(s) for s, sign in result.unmask)
  return (total - correction) % _MOD


def test_both_ends_of_a_pair_derive_the_same_seed_with_opposite_signs():
  result = protocol.run_round(_IDS, neighbors=_complete(_IDS), dropped=set(), threshold=5,
                              seed=0, round_num=3)
  a, b = result.inputs['client_1'], result.inputs['client_4']
  assert a.pair_seeds[3] == b.pair_seeds[1]  # client_4 is client_1's 4th neighbour (index 3).
  assert a.pair_signs[3] == 1 and b.pair_signs[1] == -1
  assert len(set(a.pair_seeds)) == len(_IDS) - 1


@pytest.mark.parametrize('dropped', [set(), {'client_2'}, {'client_0', 'client_5', 'client_7'}])
def test_the_server_removes_exactly_the_masks_of_survivors_and_drop_outs(dropped):
  result = protocol.run_round(_IDS, neighbors=_complete(_IDS), dropped=dropped, threshold=5,
                              seed=1, round_num=2)
  assert result.unmask is not None and result.recovered == len(dropped)
  assert result.survivors == tuple(c for c in _IDS if c not in dropped)
  np.testing.assert_array_equal(_masked_total(result), 0)


def test_fewer_than_t_survivors_abort():
  dropped = {'client_0', 'client_1', 'client_2', 'client_3'}
  result = protocol.run_round(_IDS, neighbors=_complete(_IDS), dropped=dropped, threshold=5,
                              seed=1, round_num=2)
  assert result.unmask is None and result.recovered == 0
  ok = protocol.run_round(_IDS, neighbors=_complete(_IDS), dropped=dropped, threshold=4,
                          seed=1, round_num=2)
  assert ok.unmask is not None


def test_unmasking_asks_only_survivors_for_one_share_per_client(monkeypatch):
  calls = []
  original = protocol.SecAggClient.unmask

  def spy(self, survivors, dropped):
    sent = original(self, survivors, dropped)
    calls.append((self.client_id, sent))
    return sent

  monkeypatch.setattr(protocol.SecAggClient, 'unmask', spy)
  dropped = {'client_3', 'client_6'}
  protocol.run_round(_IDS, neighbors=_complete(_IDS), dropped=dropped, threshold=5, seed=2,
                     round_num=1)
  assert sorted(c for c, _ in calls) == sorted(set(_IDS) - dropped)
  for _, sent in calls:  # One share for every other client: of b_u or of s_u, never both.
    assert set(sent) == set(_IDS)


def test_keys_are_functions_of_seed_round_and_client():
  keys = lambda seed, r: protocol.SecAggClient('a', seed=seed, round_num=r).advertise_keys()
  assert keys(0, 1) == keys(0, 1)
  assert keys(0, 1) != keys(0, 2) and keys(0, 1) != keys(1, 1)
  assert len(keys(0, 1)[0]) == protocol.PUBLIC_KEY_BYTES


def test_traffic_counts_keys_ciphertexts_and_unmasking_shares():
  result = protocol.run_round(_IDS, neighbors=_complete(_IDS), dropped={'client_1'},
                              threshold=5, seed=0, round_num=1)
  n = len(_IDS)
  assert result.key_bytes == 2 * 32 * n
  ciphertext = 2 * 66 + 16  # Two shares and the AES-GCM tag.
  unmasking = (n - 1) * n * (66 + 4)  # Each survivor: one share per client.
  assert result.share_bytes == n * (n - 1) * ciphertext + unmasking


def test_secagg_plus_graph_is_regular_symmetric_and_seeded():
  ids = [f'c{i:02d}' for i in range(20)]
  graph = protocol.masking_graph(ids, neighbors=4, rng=np.random.default_rng(0))
  assert all(len(v) == 4 and c not in v for c, v in graph.items())
  assert all(c in graph[v] for c, vs in graph.items() for v in vs)
  assert graph == protocol.masking_graph(ids, neighbors=4, rng=np.random.default_rng(0))


def test_secagg_plus_masks_cancel_with_drop_outs():
  ids = [f'c{i:02d}' for i in range(20)]
  graph = protocol.masking_graph(ids, neighbors=6, rng=np.random.default_rng(5))
  dropped = {'c03', 'c11'}
  result = protocol.run_round(ids, neighbors=graph, dropped=dropped, threshold=4, seed=0,
                              round_num=1)
  assert result.unmask is not None and result.recovered == 2
  assert len(result.unmask) == 18 + sum(len(set(graph[u]) - dropped) for u in dropped)
  np.testing.assert_array_equal(_masked_total(result), 0)
