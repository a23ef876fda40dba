"""Every random stream of a run as a pure function of (seed, purpose, round, client).

Nothing here reads the clock or global RNG state, so a resumed run draws exactly what an
uninterrupted one drew. Streams are `np.random.SeedSequence` children keyed by a stable hash of
the purpose and the client id (Python's `hash()` is salted per process, so it is never used).
"""

import hashlib
import numbers
from typing import Optional, Union

import numpy as np

ClientKey = Union[str, int, None]
# Largest seed accepted anywhere: seeds reach int64 TF ops and TFF's sampler.
MAX_SEED = 2**31 - 1
# The check of a seed setting (a `core.config.Check`).
SEED_CHECK = (lambda v: 0 <= v <= MAX_SEED, f'must be in [0, {MAX_SEED}]')


def _stable_hash(text: str) -> int:
  """A 64-bit hash of `text` that is the same in every process and on every machine."""
  return int.from_bytes(hashlib.sha256(text.encode('utf-8')).digest()[:8], 'little')


def check_seed(seed: int, *, flag: str = 'seed') -> int:
  """Returns `seed` as a Python int; ValueError naming `--<flag>` unless 0 <= seed <= MAX_SEED."""
  if (not isinstance(seed, numbers.Integral) or isinstance(seed, bool)
      or not 0 <= int(seed) <= MAX_SEED):
    raise ValueError(f'--{flag} must be an integer in [0, {MAX_SEED}], got {seed!r}')
  return int(seed)  # np.int64 -> int: TFF's sampler seeds only Python ints.


def sequence(seed: int, *, purpose: str, round_num: int = 0,
             client: ClientKey = None) -> np.random.SeedSequence:
  """The SeedSequence of one stream: (seed, purpose, round, client) -> independent bits."""
  client_word = 0 if client is None else _stable_hash(f'client:{client}')
  return np.random.SeedSequence(
      [check_seed(seed), _stable_hash(f'purpose:{purpose}'), int(round_num), client_word])


def derive(seed: int, *, purpose: str, round_num: int = 0, client: ClientKey = None) -> int:
  """A non-negative int64 seed for one stream (e.g. a tf.data shuffle or an op-level seed)."""
  state = sequence(seed, purpose=purpose, round_num=round_num, client=client)
  return int(state.generate_state(1, np.uint64)[0] >> np.uint64(1))


def purpose_word(purpose: str) -> int:
  """A 31-bit number naming `purpose`, the same everywhere: the second word of a TF stateless
  seed pair whose first word is already a derived seed (small, so offsets stay in int64)."""
  return _stable_hash(f'purpose:{purpose}') >> 33


def generator(seed: int, *, purpose: str, round_num: int = 0,
              client: ClientKey = None) -> np.random.Generator:
  """A numpy Generator for one stream."""
  return np.random.default_rng(sequence(seed, purpose=purpose, round_num=round_num,
                                        client=client))


