"""Privacy accounting with `dp_accounting`: the DP event a round really is, and its epsilon.

The event matches the sampling the round plan actually used (`SAMPLING_EVENTS`, one entry per
`--client_sampling`), and the mode (`MODES`):

- central, Poisson sampling (each client joins with probability q = clients_per_round /
  population): `PoissonSampledDpEvent(q, M(z))` under add/remove-one, M the mechanism's event.
- central, fixed-size sampling without replacement: `SampledWithoutReplacementDpEvent(N, m,
  M(z / 2))` under replace-one (dp_accounting's Wang et al. 2019 bound). Replacing one client
  changes the clipped sum by up to 2C, not C, so the noise is z/2 times that sensitivity.
- local: each client's own report is M(z / 2) (its update replaced by any other moves the
  clipped value by up to 2C); epsilon is per client, composed over the rounds it took part in
  (the server knows who reported: no amplification by sampling).

Adaptive clipping's noise on the clipped count is inside z: `--dp_noise_multiplier` is the
effective total (TFF's `adaptive_clip_noise_params` split it into value and count noise, whose
Gaussian compositions are exactly one Gaussian of multiplier z).
"""

import dataclasses
import math
from typing import Callable

import dp_accounting
from dp_accounting import pld
from dp_accounting import rdp

from tff_experiments.core import registry
from tff_experiments.privacy import mechanisms

Relation = dp_accounting.NeighboringRelation

ACCOUNTANTS: registry.Registry[Callable[[Relation], dp_accounting.PrivacyAccountant]] = (
    registry.Registry('privacy accountant', flag='dp_accountant', entries={
        'rdp': lambda relation: rdp.RdpAccountant(neighboring_relation=relation),
        'pld': lambda relation: pld.PLDAccountant(neighboring_relation=relation),
    }))

# sampler name -> fn(plan, mechanism event fn, z) -> (one round's event, neighboring relation)
SAMPLING_EVENTS = registry.Registry('DP sampling event', flag='client_sampling', entries={
    'poisson': lambda plan, event, z: (
        dp_accounting.PoissonSampledDpEvent(plan.sampling_probability, event(z)),
        Relation.ADD_OR_REMOVE_ONE),
    'uniform': lambda plan, event, z: (
        dp_accounting.SampledWithoutReplacementDpEvent(
            plan.population, plan.clients_per_round, event(z / 2)),
        Relation.REPLACE_ONE),
})

@dataclasses.dataclass(frozen=True)
class Mode:
  """A `--dp_mode`: the event of one release, and whether releases are counted per client
  (each client's participations; epsilon is the worst client's) or per round."""
  release: Callable[..., tuple]  # (plan, mechanism event fn, z) -> (event, relation)
  per_client: bool


MODES: registry.Registry[Mode] = registry.Registry('DP mode', flag='dp_mode', entries={
    'central': Mode(release=lambda plan, event, z: SAMPLING_EVENTS.get(plan.sampling)(
        plan, event, z), per_client=False),
    'local': Mode(release=lambda plan, event, z: (event(z / 2), Relation.ADD_OR_REMOVE_ONE),
                  per_client=True),
})

@dataclasses.dataclass(frozen=True)
class PrivacyPlan:
  """What accounting needs: the mechanism, mode, sampling, population, delta, accountant."""
  mechanism: str
  mode: str
  sampling: str
  population: int
  clients_per_round: int
  delta: float
  accountant: str

  @property
  def sampling_probability(self) -> float:
    return self.clients_per_round / self.population

  def release(self, noise_multiplier: float) -> tuple[dp_accounting.DpEvent, Relation]:
    """The event of one round (central) or one participation (local), and its relation."""
    mechanism_event = mechanisms.MECHANISMS.get(self.mechanism).event
    return MODES.get(self.mode).release(self, mechanism_event, noise_multiplier)

  @property
  def per_client(self) -> bool:
    """Whether releases are each client's participations (local) rather than rounds."""
    return MODES.get(self.mode).per_client

  def supported(self) -> bool:
    """Whether the accountant can account this mechanism, mode and sampling at all."""
    event, relation = self.release(1.0)
    return ACCOUNTANTS.get(self.accountant)(relation).supports(
        dp_accounting.SelfComposedDpEvent(event, 2))

  def epsilon(self, noise_multiplier: float, releases: int) -> float:
    """Epsilon at `delta` after `releases` rounds (central) or participations (local)."""
    if releases == 0:
      return 0.0
    if noise_multiplier == 0:
      return math.inf
    event, relation = self.release(noise_multiplier)
    accountant = ACCOUNTANTS.get(self.accountant)(relation)
    accountant.compose(dp_accounting.SelfComposedDpEvent(event, releases))
    return float(accountant.get_epsilon(self.delta))


# Value-noise increase the default clipped-count noise allows: z_value <= 1.05 z.
_MAX_VALUE_NOISE_FACTOR = 1.05


def default_clipped_count_stddev(noise_multiplier: float, clients_per_round: int) -> float:
  """max(m / 20, sigma) where 1/z^2 = 1/(1.05 z)^2 + 1/(2 sigma)^2 (see the flag's help)."""
  share = (1.0 - _MAX_VALUE_NOISE_FACTOR ** -2) ** 0.5
  return max(clients_per_round / 20.0, noise_multiplier / share / 2.0)


def default_delta(population: int) -> float:
  """1 / N^1.1: below 1/N, so no mechanism may simply publish one client's data."""
  return 1.0 / population ** 1.1
