"""What the secure-aggregation protocol hands to a round's TFF computation, and how it gets there.

TFF's aggregator interface gives a sum layer nothing per client but the value it sums, so the
protocol's per-round inputs travel as federated values of the round computation itself
(`rounds.SecureRounds`): one `CLIENT_TYPE` message per client at CLIENTS (its pair seeds and
signs, its self-mask or share seed, the seed of its stochastic rounding: secrets of that client
only) and one `SERVER_TYPE` message
at SERVER (the cohort size, the unmasking seeds the server rebuilt from the survivors' Shamir
shares, counts and traffic). The round computation builds the learning process inside its own
trace, with its message parameters `bind`-ed; the secure sum layers, created during that build,
take them from `current()` (TFF computations traced inside another may use its values). A
layer built outside any round (to get the process's types and initial state) gets
`placeholders()`: no masks to remove and `unmasked` false, so running it only ever aborts.

Why a binding and not an argument. The secure sums are called by TFF, not by us: by
`tff.aggregators.MeanFactory` (the values and, for a weighted mean, the weights),
`DifferentiallyPrivateFactory` and `UnweightedMeanFactory`, inside the process that
`tff.learning.templates.compose_learning_process` builds, and they call `next(state, value)`
with nothing else. So the messages can reach a secure sum only by closure: they must be in
scope when its `next_fn` is traced, which happens while the algorithm builds its process
inside the round computation. Passing them explicitly would make every layer's `wrap`, the
stack and every algorithm builder take the values of one particular trace, for the sake of the
two secure layers. The binding is narrow instead: `rounds.SecureRounds` binds the messages
only around that build, in the tracing thread; `current()` is read only while tracing (never
when a round runs); outside a binding it is None.
"""

import collections
import contextlib
import threading
from typing import Iterator, Optional

import numpy as np
import tensorflow_federated as tff

CLIENT_TYPE = tff.StructType([
    ('pair_seeds', tff.TensorType(np.int64, [None, 2])),  # One PRG seed per neighbour.
    ('pair_signs', tff.TensorType(np.int64, [None])),  # +1 / -1: the pair's masks cancel.
    ('self_seed', tff.TensorType(np.int64, [2])),  # b_u (masking), the share seed (two_server).
    ('rounding_seed', tff.TensorType(np.int64, [2])),  # Its stochastic rounding: never shared.
])
SERVER_TYPE = tff.StructType([
    ('participants', tff.TensorType(np.int64)),  # n: sets the fixed-point scale (public).
    ('unmasked', tff.TensorType(np.bool_)),  # False: too few shares, the round aborts.
    ('unmask_seeds', tff.TensorType(np.int64, [None, 2])),  # Rebuilt self and pair seeds.
    ('unmask_signs', tff.TensorType(np.int64, [None])),
    ('clients_masked', tff.TensorType(np.int64)),
    ('dropped_after_masking', tff.TensorType(np.int64)),
    ('recovered', tff.TensorType(np.int64)),
    ('key_agreement_bits', tff.TensorType(np.float64)),
    ('share_bits', tff.TensorType(np.float64)),
    ('protocol_time_s', tff.TensorType(np.float64)),
])

_BOUND = threading.local()


def client_message(pair_seeds=(), pair_signs=(), self_seed=(0, 0),
                   rounding_seed=(0, 0)) -> collections.OrderedDict:
  """One client's message as the round computation takes it."""
  return collections.OrderedDict(
      pair_seeds=np.asarray(pair_seeds, np.int64).reshape(-1, 2),
      pair_signs=np.asarray(pair_signs, np.int64).reshape(-1),
      self_seed=np.asarray(self_seed, np.int64).reshape(2),
      rounding_seed=np.asarray(rounding_seed, np.int64).reshape(2))


def server_message(*, participants: int, unmasked: bool, unmask_seeds=(), unmask_signs=(),
                   clients_masked: int = 0, dropped_after_masking: int = 0, recovered: int = 0,
                   key_agreement_bits: float = 0.0, share_bits: float = 0.0,
                   protocol_time_s: float = 0.0) -> collections.OrderedDict:
  """The server's message as the round computation takes it."""
  return collections.OrderedDict(
      participants=np.int64(participants), unmasked=np.bool_(unmasked),
      unmask_seeds=np.asarray(unmask_seeds, np.int64).reshape(-1, 2),
      unmask_signs=np.asarray(unmask_signs, np.int64).reshape(-1),
      clients_masked=np.int64(clients_masked),
      dropped_after_masking=np.int64(dropped_after_masking), recovered=np.int64(recovered),
      key_agreement_bits=np.float64(key_agreement_bits), share_bits=np.float64(share_bits),
      protocol_time_s=np.float64(protocol_time_s))


@contextlib.contextmanager
def bind(clients, server) -> Iterator[None]:
  """Within: secure sum layers built take `clients` (at CLIENTS) and `server` (at SERVER),
  federated values of the enclosing round computation."""
  previous = getattr(_BOUND, 'messages', None)
  _BOUND.messages = (clients, server)
  try:
    yield
  finally:
    _BOUND.messages = previous


def current() -> Optional[tuple]:
  """The bound (clients, server) messages, or None outside a round computation's build."""
  return getattr(_BOUND, 'messages', None)


def placeholders() -> tuple:
  """Federated (clients, server) messages of no round (to be called while tracing): nothing
  to unmask, so a process built with them aborts every round it runs."""
  return (tff.federated_value(client_message(), tff.CLIENTS),
          tff.federated_value(server_message(participants=1, unmasked=False), tff.SERVER))
