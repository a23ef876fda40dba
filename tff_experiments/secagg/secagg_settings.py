"""The secure-aggregation settings (`--secure_aggregation`, `--secagg_*`) and their checks.

Kept beside the protocol code (the other sections are in `sections.py`); `settings` composes it.
"""

import dataclasses
from typing import ClassVar, Optional

from tff_experiments.core import config
from tff_experiments.secagg import masking
from tff_experiments.secagg import rounds

setting = config.setting
OFF = 'none'


def enabled(flat) -> bool:
  return flat['secure_aggregation'] != OFF


def _masking(flat) -> bool:
  return flat['secure_aggregation'] == 'masking'


def _default_clip(flat) -> Optional[float]:
  """The DP clip under central DP (an L2-clipped record fits exactly), else None: measured."""
  central_dp = flat['dp_mechanism'] != 'none' and flat['dp_mode'] == 'central'
  return flat['dp_clip_norm'] if enabled(flat) and central_dp else None


def _default_threshold(flat) -> Optional[int]:
  if not _masking(flat):
    return None
  holders = flat['clients_per_round']
  if flat['secagg_neighbors'] is not None:
    holders = min(holders, flat['secagg_neighbors'] + 1)
  return holders // 2 + 1


@dataclasses.dataclass(frozen=True)
class SecAggSettings(config.Section):
  """Secure aggregation of the model updates: the server learns only their sum."""
  flag_prefix: ClassVar[str] = 'secagg_'
  mode: str = setting(
      OFF, flag='secure_aggregation', choices=lambda: [OFF] + rounds.SETUPS.names(),
      help='none | masking: Bonawitz et al. 2017: clients agree on pairwise seeds (X25519), '
           'add the PRG masks they share (+ on one side, - on the other) and a self-mask, and '
           'Shamir-share what the server needs to remove the masks of clients that drop out '
           '(--secagg_threshold); the server sees only masked vectors and the sum | '
           'two_server: each client splits its encoded update into two additive shares mod '
           '2^b, one per non-colluding server; each server sums its shares. The weighted '
           'mean\'s weights are summed securely too (exact integers mod 2^32).')
  bits: int = setting(
      32, checks=[(lambda v: 8 <= v <= masking.MAX_BITS, f'must be in [8, {masking.MAX_BITS}]')],
      active=enabled,
      help='Updates travel as integers mod 2^b (Flower\'s SecAgg+: 2^32). Each coordinate of a '
           'client\'s contribution is clipped to the range [-R, R] of its tensor '
           '(--secagg_clip_norm) and scaled to an integer of magnitude <= L = '
           'floor((2^(b-1) - 1) / n) for a round of n clients, so the sum of n contributions '
           'never wraps; rounding is stochastic (unbiased, seeded per client and round) and '
           'costs less than one step R / L per coordinate and client (variance <= step^2 / 4). '
           f'L must be >= {masking.MIN_LEVELS} at --clients_per_round.')
  clip_norm: Optional[float] = setting(
      None, checks=[(lambda v: v > 0, 'must be > 0')], active=enabled,
      resolve=_default_clip,
      help='R: a fixed L-infinity clip (largest |coordinate|) of each client\'s contribution to '
           'the secure sum: its update times its weight under a weighted mean (e.g. 600 '
           'examples), its DP record under central DP. Default: --dp_clip_norm with central '
           'DP (an L2-clipped record fits exactly; with --dp_adaptive_clip a grown clip may '
           'be cut), else measured every round per tensor: the clients first sum securely a '
           'histogram of their largest |coordinate| (half-octave buckets), and R is the '
           'highest bucket edge reached (no client is clipped; R is within a factor sqrt(2) '
           'of the largest coordinate). A fixed R far above the update\'s scale drowns it in '
           'rounding noise: see secagg/encoding_relative_error.')
  neighbors: Optional[int] = setting(
      None, checks=[(lambda v: v >= 2 and v % 2 == 0, 'must be an even number >= 2')],
      active=_masking,
      help='SecAgg+ (Bell et al. 2020): each client masks with, and shares its keys among, '
           'only k others (a seeded k-regular graph), so the cost grows as n k, not n^2 '
           '(their k = O(log n) keeps the guarantees). Default: everyone (Bonawitz et al.).')
  threshold: Optional[int] = setting(
      None, checks=[(lambda v: v >= 1, 'must be >= 1')], active=_masking,
      resolve=_default_threshold,
      help='t of Shamir\'s t-of-n sharing: a round needs t clients that delivered their masked '
           'update (and t shares of every secret to rebuild), else it is aborted and recorded '
           'so (the model does not change). Default: a majority, floor(m/2) + 1 of '
           '--clients_per_round (with --secagg_neighbors k, of k + 1).')
  dropout_rate: float = setting(
      0.0, checks=[(lambda v: 0 <= v < 1, 'must be in [0, 1)')], active=_masking,
      help='Probability that a client drops after sharing its keys and masking, before its '
           'masked update arrives (seeded by seed and round); the server removes its masks '
           'from shares. Drop-outs before the protocol come from --client_dropout_rate.')


CROSS_CHECKS = (
    config.CrossCheck(
        ('secure_aggregation', 'algorithm'),
        lambda f: not enabled(f) or f['algorithm'] != 'fednova',
        '--secure_aggregation does not combine with --algorithm=fednova (its clients\' step '
        'counts are averaged in the clear)'),
    config.CrossCheck(
        ('secure_aggregation', 'secagg_threshold', 'clients_per_round'),
        lambda f: (not _masking(f) or f['secagg_threshold'] is None
                   or f['secagg_threshold'] <= f['clients_per_round']),
        lambda f: (f'--secagg_threshold={f["secagg_threshold"]} exceeds --clients_per_round='
                   f'{f["clients_per_round"]}: every round would abort')),
    config.CrossCheck(
        ('secure_aggregation', 'secagg_threshold', 'secagg_neighbors'),
        lambda f: (not _masking(f) or None in (f['secagg_neighbors'], f['secagg_threshold'])
                   or f['secagg_threshold'] <= f['secagg_neighbors'] + 1),
        lambda f: (f'--secagg_threshold={f["secagg_threshold"]} exceeds the '
                   f'--secagg_neighbors={f["secagg_neighbors"]} + 1 holders of each secret')),
    config.CrossCheck(
        ('secure_aggregation', 'secagg_bits', 'clients_per_round'),
        lambda f: (not enabled(f) or masking.level_count(f['secagg_bits'], f['clients_per_round'])
                   >= masking.MIN_LEVELS),
        lambda f: masking.too_few_levels(f['secagg_bits'], f['clients_per_round'],
                                         f'--clients_per_round={f["clients_per_round"]}')),
)
