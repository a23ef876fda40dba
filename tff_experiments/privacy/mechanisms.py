"""DP mechanisms by `--dp_mechanism`: how a contribution is clipped and noised, and its event.

A mechanism is one registry entry: its clipping (the norm that bounds one client's
contribution), its noise at scale `noise_multiplier * clip`, the tensorflow-privacy-style query
that does both centrally (`queries`), and the `dp_accounting` event of one release with
sensitivity 1 (what the accountant composes; see `accounting`).
"""

import dataclasses
from typing import Any, Callable

import dp_accounting
import tensorflow as tf

from tff_experiments.core import noise
from tff_experiments.core import registry
from tff_experiments.privacy import queries


@dataclasses.dataclass(frozen=True)
class Mechanism:
  """Clipping norm, noise and accounting of one DP mechanism."""
  norm: str  # The clipping norm, as the flags' help names it ('L2', 'L1').
  clip: Callable[[Any, Any], tuple[Any, tf.Tensor]]  # (structure, clip) -> (clipped, norm)
  noise: Callable[..., Any]  # (structure, *, scale, seed) -> noise like the structure
  query: Callable[..., Any]  # (*, clip, noise_multiplier, seed) -> a SumAggregationDPQuery
  event: Callable[[float], dp_accounting.DpEvent]  # noise multiplier -> one release's event
  adaptive_clipping: bool = False  # Whether --dp_adaptive_clip applies.


def _l2_clip(structure, clip):
  leaves = tf.nest.flatten(structure)
  clipped, norm = tf.clip_by_global_norm(leaves, clip)
  return tf.nest.pack_sequence_as(structure, clipped), norm


MECHANISMS: registry.Registry[Mechanism] = registry.Registry(
    'DP mechanism', flag='dp_mechanism', entries={
        'gaussian': Mechanism(
            norm='L2', clip=_l2_clip,
            noise=lambda s, *, scale, seed: noise.gaussian_noise(s, stddev=scale, seed=seed),
            query=lambda *, clip, noise_multiplier, seed: queries.SeededGaussianSumQuery(
                clip, noise_multiplier * clip, seed=seed),
            event=dp_accounting.GaussianDpEvent, adaptive_clipping=True),
        'laplace': Mechanism(
            norm='L1', clip=queries.l1_clip, noise=noise.laplace_noise,
            query=lambda *, clip, noise_multiplier, seed: queries.SeededLaplaceSumQuery(
                clip, noise_multiplier * clip, seed=seed),
            event=dp_accounting.LaplaceDpEvent),
    })

# `--dp_mechanism` choices: none, or a registered mechanism.
OFF = 'none'


def choices() -> list[str]:
  return [OFF] + MECHANISMS.names()
