"""Secure aggregation around each round: the protocol's setup in the driver, then one TFF round.

A round of TFF is one computation run by its C++ worker, which cannot run X25519 or Shamir, so
the protocol's key agreement, secret sharing and the server's reconstruction run in the driver
before it, as each client's and the server's setup steps (`SETUPS`, by `--secure_aggregation`):
the clients that drop after masking (`--secagg_dropout_rate`, seeded by (seed, round)) never
deliver a masked input, and the server rebuilds what it needs from the survivors' shares only.
The results enter the round computation as its own federated values (`messages`): a secret
message per client at CLIENTS, the server's at SERVER. The computation takes the survivors'
tasks and these messages, and builds the learning process inside its trace with the messages
bound, so the stack's secure sums mask inside each client's TFF computation and unmask in the
server's: the server-side code receives masked vectors (or one share each) and the seeds it
rebuilt, nothing else of a client's update.

`SecureRounds` is the round runner of such runs (`runner.round_runner.RoundRunner`: `run(state,
plan)`, since the protocol needs the round number and the cohort). The assembly wraps the
learning process in it only when `--secure_aggregation` is on; its round keeps TFF's native
form (only plain rounds are compiled to MapReduce form, `runtime.map_reduce`).
"""

import collections
import dataclasses
import time
from typing import Callable, Sequence

import numpy as np
import tensorflow_federated as tff

from tff_experiments.clients import client_data
from tff_experiments.core import registry
from tff_experiments.core import seeds
from tff_experiments.runner import round_plan
from tff_experiments.secagg import masking
from tff_experiments.secagg import messages
from tff_experiments.secagg import protocol


@dataclasses.dataclass(frozen=True)
class Setup:
  """A round's protocol outcome: whose masked inputs arrive, their messages (same order), the
  server's message."""
  survivors: tuple[str, ...]
  clients: list
  server: collections.OrderedDict


def dropped_after_masking(client_ids: Sequence[str], *, rate: float, seed: int,
                          round_num: int) -> set[str]:
  """Each client independently drops after sharing its keys with probability `rate`."""
  draws = seeds.generator(seed, purpose='secagg_dropout', round_num=round_num).random(
      len(client_ids))
  return {c for c, u in zip(client_ids, draws) if u < rate}


def masking_graph(client_ids: Sequence[str], *, neighbors, seed: int,
                  round_num: int) -> dict[str, tuple[str, ...]]:
  """The round's masking graph (SecAgg+'s drawn from (seed, round))."""
  return protocol.masking_graph(
      client_ids, neighbors=neighbors,
      rng=seeds.generator(seed, purpose='secagg_graph', round_num=round_num))


def client_seed(seed: int, *, purpose: str, round_num: int, client: str) -> protocol.Seed:
  """A client's own 128-bit PRG seed for `purpose`, drawn from (seed, purpose, round, client)."""
  return protocol.prg_seed(seeds.generator(seed, purpose=purpose, round_num=round_num,
                                           client=client).bytes(protocol.SEED_BYTES))


def rounding_seed(seed: int, *, round_num: int, client: str) -> protocol.Seed:
  """The seed of a client's stochastic rounding in a round (`masking.encode`): its own secret,
  independent of its masks' and shares' seeds, never a function of its data."""
  return client_seed(seed, purpose='secagg_rounding', round_num=round_num, client=client)


def _masking(client_ids: Sequence[str], *, round_num: int, seed: int, settings) -> Setup:
  """Bonawitz et al. (`protocol.run_round`) over the cohort's masking graph."""
  graph = masking_graph(client_ids, neighbors=settings.neighbors, seed=seed,
                        round_num=round_num)
  dropped = dropped_after_masking(client_ids, rate=settings.dropout_rate, seed=seed,
                                  round_num=round_num)
  result = protocol.run_round(client_ids, neighbors=graph, dropped=dropped,
                              threshold=settings.threshold, seed=seed, round_num=round_num)
  unmask = result.unmask or ()
  server = messages.server_message(
      participants=len(client_ids), unmasked=result.unmask is not None,
      unmask_seeds=[s for s, _ in unmask], unmask_signs=[sign for _, sign in unmask],
      clients_masked=len(client_ids), dropped_after_masking=len(dropped),
      recovered=result.recovered, key_agreement_bits=8.0 * result.key_bytes,
      share_bits=8.0 * result.share_bytes)
  clients = [messages.client_message(
      result.inputs[c].pair_seeds, result.inputs[c].pair_signs, result.inputs[c].self_seed,
      rounding_seed(seed, round_num=round_num, client=c)) for c in result.survivors]
  return Setup(result.survivors, clients, server)


def _two_server(client_ids: Sequence[str], *, round_num: int, seed: int, settings) -> Setup:
  """Each client's share seed, drawn from (seed, round, client): nothing to agree on."""
  del settings
  clients = [messages.client_message(
      self_seed=client_seed(seed, purpose='secagg_share', round_num=round_num, client=c),
      rounding_seed=rounding_seed(seed, round_num=round_num, client=c)) for c in client_ids]
  server = messages.server_message(participants=len(client_ids), unmasked=True,
                                   clients_masked=len(client_ids))
  return Setup(tuple(client_ids), clients, server)


# `--secure_aggregation` -> fn(client ids, *, round_num, seed, settings) -> Setup.
SETUPS: registry.Registry[Callable[..., Setup]] = registry.Registry(
    'secure aggregation protocol', flag='secure_aggregation',
    entries={'masking': _masking, 'two_server': _two_server})


def protocol_setup(settings, *, seed: int, client_ids: Sequence[str], round_num: int) -> Setup:
  """The setup of `settings.mode`'s protocol for a round's cohort, its time in the server
  message."""
  began = time.perf_counter()
  if client_ids and masking.level_count(settings.bits, len(client_ids)) < masking.MIN_LEVELS:
    raise ValueError(masking.too_few_levels(settings.bits, len(client_ids),
                                            f"round {round_num}'s {len(client_ids)}"))
  setup = SETUPS.get(settings.mode)(list(client_ids), round_num=round_num, seed=seed,
                                    settings=settings)
  setup.server['protocol_time_s'] = np.float64(time.perf_counter() - began)
  return setup


class SecureRounds:
  """The round runner of a learning process whose every round runs a secure-aggregation
  protocol (see module doc): `build()` makes the learning process over ClientInputs (called
  once outside any round, for the state and model weights, and once inside the round
  computation's trace with the messages bound), `input_computation` maps a ClientTask to them."""

  def __init__(self, build: Callable[[], tff.learning.templates.LearningProcess],
               input_computation: tff.Computation, *, settings, seed: int):
    self._settings, self._seed = settings, seed
    outside = client_data.compose_with_tasks(input_computation, build())
    self.initialize, self.get_model_weights = outside.initialize, outside.get_model_weights

    @tff.federated_computation(outside.initialize.type_signature.result,
                               tff.FederatedType(client_data.TASK_TYPE, tff.CLIENTS),
                               tff.FederatedType(messages.CLIENT_TYPE, tff.CLIENTS),
                               tff.FederatedType(messages.SERVER_TYPE, tff.SERVER))
    def next_fn(state, tasks, client_messages, server_message):
      with messages.bind(client_messages, server_message):
        process = build()
      return process.next(state, tff.federated_map(input_computation, tasks))

    self.next = next_fn

  def run(self, state, plan: round_plan.RoundPlan
          ) -> tff.learning.templates.LearningProcessOutput:
    """One round on the plan's reporting clients through the protocol; the old state and an
    aborted record if no masked input arrived at all."""
    setup = protocol_setup(self._settings, seed=self._seed, client_ids=plan.reporting,
                           round_num=plan.round_num)
    arrived = set(setup.survivors)
    tasks = [t for t in plan.tasks() if t['client_id'] in arrived]
    if not tasks:
      report = {k: setup.server[k] for k in ('clients_masked', 'dropped_after_masking',
                                             'recovered', 'key_agreement_bits', 'share_bits',
                                             'protocol_time_s')}
      return tff.learning.templates.LearningProcessOutput(
          state, collections.OrderedDict(secagg=collections.OrderedDict(aborted=1, **report)))
    return self.next(state, tasks, setup.clients, setup.server)

