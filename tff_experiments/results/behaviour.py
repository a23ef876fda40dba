"""Which version of the package's behaviour a run was started with, and what changed since.

A change that gives the same settings different numbers (a fixed formula, a new seeding) is one
`Change` entry: the version it arrived in, the settings it applies to, and what it changed in a
few words. hparams.json records the version a run was started with (`KEY`; absent: version 1).
A run of earlier behaviour whose settings a later change applies to is neither resumed nor
reported as finished: its checkpoint and rows would mix the two behaviours.
"""

import dataclasses
from typing import Any, Callable, Mapping

Flat = Mapping[str, Any]
# hparams.json key of the behaviour version (not a flag: never compared as a setting).
KEY = 'behaviour_version'
# What a run without the key was started with.
FIRST = 1


@dataclasses.dataclass(frozen=True)
class Change:
  """A change of results for the runs whose settings satisfy `applies`, from `version` on."""
  version: int
  applies: Callable[[Flat], bool]
  what: str


def _local_dp(f: Flat) -> bool:
  return f['dp_mechanism'] != 'none' and f['dp_mode'] == 'local'


def _fednova_weighted_by_data(f: Flat) -> bool:
  """FedNova averaging with dataset_size weights (its default since version 2; a run started
  before with the then-default num_examples differs in --client_weighting anyway)."""
  return (f['algorithm'] == 'fednova' and f['dp_mechanism'] == 'none'
          and f['aggregator'] == 'mean' and f['client_weighting'] == 'dataset_size')


CHANGES: tuple[Change, ...] = (
    Change(2, _fednova_weighted_by_data,
           "fednova's default --client_weighting is dataset_size (Wang et al.'s p_i = n_i / n), "
           'not num_examples, which shrank a straggler\'s weight with its steps'),
    Change(2, lambda f: _local_dp(f) or f['quantization'] != 'none',
           "local-DP noise and quantization draws are seeded by (seed, round, client), not by "
           "the client's update; a rotated message no longer counts 64 bits for its seed"),
    Change(2, lambda f: f['secure_aggregation'] != 'none',
           "secure aggregation's fixed-point encoding rounds stochastically (seeded per client "
           'and round) on a range measured every round from a securely summed histogram of the '
           "clients' largest coordinates, unless --secagg_clip_norm or central DP fixes it"),
    Change(2, lambda f: f['partition'] == 'dirichlet',
           "--partition=dirichlet follows NIID-Bench's partition_data (a client holding N/n "
           'examples gets no more; redrawn until every client has 10), from another stream of '
           '--split_seed'),
)
CURRENT = max(change.version for change in CHANGES)


def saved_version(hparams: Mapping[str, Any]) -> int:
  """The behaviour version recorded in a run's hparams.json."""
  return int(hparams.get(KEY, FIRST))


def changes_since(version: int, values: Flat) -> list[Change]:
  """The changes after `version` that apply to a run of settings `values` (flag -> value)."""
  return [c for c in CHANGES if c.version > version and c.applies(values)]
