"""Secure aggregation by pairwise masking (Bonawitz et al. 2017): the protocol's cryptography.

One round, honest-but-curious server, run by the driver as the clients' and the server's setup
steps (TFF's computations cannot run X25519 or Shamir):

0. AdvertiseKeys: each client u in the cohort U1 sends two X25519 public keys, c_u (a channel
   to the other clients) and s_u (mask agreement). Private keys are 32 bytes drawn from
   (run seed, round, client, purpose), never from the clock or the OS.
1. ShareKeys: u Shamir-shares (t-of-n, `shamir`) its self-mask seed b_u and its mask private
   key s_u^SK among its neighbours (the whole cohort, or SecAgg+'s sparse graph) and itself;
   each share pair is AES-GCM encrypted under HKDF(X25519(c_u, c_v)) and routed by the server,
   which cannot read it.
2. MaskedInputCollection: u derives a 128-bit pair seed s_uv = HKDF(X25519(s_u^SK, s_v^PK))
   per neighbour and masks its encoded update with PRG(s_uv) (+ if u < v, - otherwise) and
   PRG(b_u) (`masking`, inside the TFF client computation). Clients that drop now (after
   sharing) never deliver a masked input.
3. Unmasking: each survivor v sends, per client u, one share only: of b_u if u survived, of
   s_u^SK if u dropped. With t shares the server rebuilds b_u for every survivor and, for every
   dropped u, s_u^SK and from it s_uv with each surviving neighbour v; these PRG seeds (with
   the signs) are all it needs to remove the masks from the sum. With fewer than t shares of
   any needed secret it aborts: the round is recorded as aborted, never unmasked wrongly.

`run_round` plays one round and returns what each survivor's TFF computation and the
server's receive, and the bytes every client uploaded for keys and shares.
"""

import dataclasses
import struct
from typing import Mapping, Optional, Sequence

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.ciphers import aead
from cryptography.hazmat.primitives.kdf import hkdf

from tff_experiments.core import seeds
from tff_experiments.secagg import shamir

PUBLIC_KEY_BYTES = 32
SEED_BYTES = 16  # A PRG seed: two int64 words for TF's stateless random ops.
_INDEX_BYTES = 4  # Whose share an unmasking message carries.
_NONCE = bytes(12)  # Each AES-GCM key encrypts exactly one message (sender, receiver, round).

Seed = tuple[int, int]  # Signed int64 words, as TF takes them.


def prg_seed(key: bytes) -> Seed:
  """The first 16 bytes of `key` as two signed int64 (a TF stateless-op seed)."""
  return struct.unpack('<qq', key[:SEED_BYTES])


def _kdf(shared: bytes, *, length: int, info: bytes) -> bytes:
  return hkdf.HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(shared)


def _public(key: x25519.X25519PrivateKey) -> bytes:
  return key.public_key().public_bytes(serialization.Encoding.Raw,
                                       serialization.PublicFormat.Raw)


def _private_key(seed: int, purpose: str, round_num: int, client: str) -> x25519.X25519PrivateKey:
  raw = seeds.generator(seed, purpose=purpose, round_num=round_num, client=client).bytes(32)
  return x25519.X25519PrivateKey.from_private_bytes(raw)


def pair_seed(private: x25519.X25519PrivateKey, peer_public: bytes, round_num: int) -> Seed:
  """s_uv: the PRG seed both ends of a pair derive from their mask keys."""
  shared = private.exchange(x25519.X25519PublicKey.from_public_bytes(peer_public))
  return prg_seed(_kdf(shared, length=SEED_BYTES, info=b'secagg mask %d' % round_num))


def pair_sign(u: str, v: str) -> int:
  """+1 for the smaller client id of a pair, -1 for the other: pair masks cancel in the sum."""
  return 1 if u < v else -1


@dataclasses.dataclass(frozen=True)
class MaskingInputs:
  """What one client's TFF computation needs to mask: a seed and sign per neighbour, b_u."""
  pair_seeds: tuple[Seed, ...]
  pair_signs: tuple[int, ...]
  self_seed: Seed


class SecAggClient:
  """One client's side of one round; every key is a function of (seed, round, client)."""

  def __init__(self, client_id: str, *, seed: int, round_num: int):
    self.client_id, self._round = client_id, round_num
    self._channel_key = _private_key(seed, 'secagg_channel_key', round_num, client_id)
    self._mask_key = _private_key(seed, 'secagg_mask_key', round_num, client_id)
    self._self_seed = seeds.generator(seed, purpose='secagg_self_mask', round_num=round_num,
                                      client=client_id).bytes(SEED_BYTES)
    self._rng = seeds.generator(seed, purpose='secagg_shamir', round_num=round_num,
                                client=client_id)
    self._held: dict[str, tuple[int, int]] = {}  # Sender -> (share of b, share of s^SK).
    self._x = 0

  def advertise_keys(self) -> tuple[bytes, bytes]:
    """Round 0: the public keys (c_u, s_u)."""
    return _public(self._channel_key), _public(self._mask_key)

  def _channel(self, sender: str, receiver: str, peer_public: bytes) -> aead.AESGCM:
    shared = self._channel_key.exchange(x25519.X25519PublicKey.from_public_bytes(peer_public))
    info = b'secagg share %d|' % self._round + f'{sender}|{receiver}'.encode()
    return aead.AESGCM(_kdf(shared, length=32, info=info))

  def share_keys(self, roster: Mapping[str, tuple[bytes, bytes]], neighbors: Sequence[str],
                 points: Mapping[str, int], threshold: int) -> dict[str, bytes]:
    """Round 1: shares of b_u and s_u^SK for each neighbour (and itself, kept), each encrypted
    to its holder; `points` are the holders' Shamir x-coordinates."""
    me = self.client_id
    holders = [me, *neighbors]
    xs = [points[v] for v in holders]
    mask_secret = int.from_bytes(self._mask_key.private_bytes_raw(), 'little')
    b_shares = shamir.split(int.from_bytes(self._self_seed, 'little'), threshold=threshold,
                            xs=xs, rng=self._rng)
    s_shares = shamir.split(mask_secret, threshold=threshold, xs=xs, rng=self._rng)
    self._x = points[me]
    self._held[me] = (b_shares[self._x], s_shares[self._x])
    out = {}
    for v in neighbors:
      x = points[v]
      plain = b_shares[x].to_bytes(shamir.SHARE_BYTES, 'little') + s_shares[x].to_bytes(
          shamir.SHARE_BYTES, 'little')
      out[v] = self._channel(me, v, roster[v][0]).encrypt(_NONCE, plain, None)
    return out

  def receive_shares(self, roster: Mapping[str, tuple[bytes, bytes]],
                     ciphertexts: Mapping[str, bytes]) -> None:
    """The shares other clients encrypted to this one (routed by the server)."""
    for sender, ciphertext in ciphertexts.items():
      plain = self._channel(sender, self.client_id, roster[sender][0]).decrypt(
          _NONCE, ciphertext, None)
      n = shamir.SHARE_BYTES
      self._held[sender] = (int.from_bytes(plain[:n], 'little'),
                            int.from_bytes(plain[n:], 'little'))

  def masking_inputs(self, roster: Mapping[str, tuple[bytes, bytes]],
                     neighbors: Sequence[str]) -> MaskingInputs:
    """Round 2: the pair seeds s_uv with their signs, and b_u."""
    return MaskingInputs(
        pair_seeds=tuple(pair_seed(self._mask_key, roster[v][1], self._round) for v in neighbors),
        pair_signs=tuple(pair_sign(self.client_id, v) for v in neighbors),
        self_seed=prg_seed(self._self_seed))

  def unmask(self, survivors: set[str], dropped: set[str]) -> dict[str, tuple[int, int]]:
    """Round 3: {u: (x, share)}: a share of b_u for a surviving u, of s_u^SK for a dropped u;
    never both for the same u."""
    out = {}
    for sender, (b_share, s_share) in self._held.items():
      if sender in survivors:
        out[sender] = (self._x, b_share)
      elif sender in dropped:
        out[sender] = (self._x, s_share)
    return out


@dataclasses.dataclass(frozen=True)
class RoundResult:
  """One round's outcome: survivors' masking inputs; the server's unmasking seeds (None:
  aborted) with their signs; how many dropped clients' masks it removed; uplink bytes."""
  survivors: tuple[str, ...]
  inputs: Mapping[str, MaskingInputs]
  unmask: Optional[tuple[tuple[Seed, int], ...]]
  recovered: int
  key_bytes: int
  share_bytes: int


def _reconstruct(shares: Sequence[tuple[int, int]], threshold: int) -> Optional[int]:
  if len(shares) < threshold:
    return None
  return shamir.reconstruct(dict(shares), threshold=threshold)


def run_round(client_ids: Sequence[str], *, neighbors: Mapping[str, Sequence[str]],
              dropped: set[str], threshold: int, seed: int, round_num: int) -> RoundResult:
  """One round of the protocol over the cohort `client_ids`, the masking graph `neighbors`
  (symmetric; without self-loops), and the clients that drop after sharing their keys."""
  clients = {c: SecAggClient(c, seed=seed, round_num=round_num) for c in client_ids}
  roster = {c: client.advertise_keys() for c, client in clients.items()}
  key_bytes = 2 * PUBLIC_KEY_BYTES * len(roster)
  points = {c: i + 1 for i, c in enumerate(client_ids)}
  outgoing = {c: client.share_keys(roster, neighbors[c], points, threshold)
              for c, client in clients.items()}
  share_bytes = sum(len(ct) for messages in outgoing.values() for ct in messages.values())
  for c, client in clients.items():  # The server routes each ciphertext to its holder.
    client.receive_shares(roster, {u: outgoing[u][c] for u in client_ids if c in outgoing[u]})
  survivors = tuple(c for c in client_ids if c not in dropped)
  inputs = {c: clients[c].masking_inputs(roster, neighbors[c]) for c in survivors}
  responses = {v: clients[v].unmask(set(survivors), dropped) for v in survivors}
  share_bytes += sum((shamir.SHARE_BYTES + _INDEX_BYTES) * len(r) for r in responses.values())
  shares_of = lambda u: [r[u] for r in responses.values() if u in r]
  if len(survivors) < threshold:  # Bonawitz et al.: fewer than t at any step ends the round.
    return RoundResult(survivors, inputs, None, 0, key_bytes, share_bytes)
  unmask: list[tuple[Seed, int]] = []
  recovered = 0
  for u in survivors:
    b_u = _reconstruct(shares_of(u), threshold)
    if b_u is None:
      return RoundResult(survivors, inputs, None, 0, key_bytes, share_bytes)
    unmask.append((prg_seed(b_u.to_bytes(SEED_BYTES, 'little')), 1))
  for u in sorted(dropped & set(client_ids)):
    live = [v for v in neighbors[u] if v not in dropped]
    if not live:
      continue  # Nobody holds u's pair masks: nothing to remove.
    s_u = _reconstruct(shares_of(u), threshold)
    if s_u is None:
      return RoundResult(survivors, inputs, None, 0, key_bytes, share_bytes)
    key = x25519.X25519PrivateKey.from_private_bytes(s_u.to_bytes(32, 'little'))
    unmask += [(pair_seed(key, roster[v][1], round_num), pair_sign(v, u)) for v in live]
    recovered += 1
  return RoundResult(survivors, inputs, tuple(unmask), recovered, key_bytes, share_bytes)


def masking_graph(client_ids: Sequence[str], *, neighbors: Optional[int],
                  rng) -> dict[str, tuple[str, ...]]:
  """Who masks with (and holds shares of) whom: everyone (Bonawitz et al.), or SecAgg+'s
  k-regular graph (Bell et al. 2020: a Harary graph over a seeded random order, each client
  joined to the `neighbors` / 2 nearest on either side), so cost grows as n k, not n^2."""
  n = len(client_ids)
  if neighbors is None or neighbors >= n - 1:
    return {c: tuple(v for v in client_ids if v != c) for c in client_ids}
  order = [client_ids[i] for i in rng.permutation(n)]
  half = neighbors // 2
  return {c: tuple(sorted({order[(i + d) % n] for d in range(-half, half + 1) if d},
                          key=client_ids.index))
          for i, c in enumerate(order)}
