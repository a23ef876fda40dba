"""The DP settings (`--dp_*`), a section of the experiment's settings, and their checks.

Kept beside the privacy code (most other sections are in `sections.py`); `settings` composes it.
Values that need the number of clients (the default delta for natural datasets, a noise
multiplier calibrated to `--dp_target_epsilon`, `calibration`) are completed once the data is
loaded (`experiment.complete`) and recorded in hparams.json.
"""

import dataclasses
from typing import ClassVar, Optional

from tff_experiments.clients import data_settings
from tff_experiments.core import config
from tff_experiments.privacy import accounting
from tff_experiments.privacy import mechanisms

setting = config.setting
_POSITIVE = config.POSITIVE


def enabled(flat) -> bool:
  """Whether the flat settings turn DP on."""
  return flat['dp_mechanism'] != mechanisms.OFF


def _central(flat) -> bool:
  return enabled(flat) and flat['dp_mode'] == 'central'


def _adaptive(flat) -> bool:
  return _central(flat) and flat['dp_adaptive_clip']


@dataclasses.dataclass(frozen=True)
class PrivacySettings(config.Section):
  """Differential privacy of the model updates (`--dp_*`): mechanism, clipping, accounting."""
  flag_prefix: ClassVar[str] = 'dp_'
  mechanism: str = setting(
      mechanisms.OFF, choices=mechanisms.choices,
      help='none | gaussian: DP-FedAvg (McMahan et al. 2018): each client update L2-clipped to '
           '--dp_clip_norm, unweighted sum, Gaussian noise of std --dp_noise_multiplier x clip, '
           'divided by the expected cohort --clients_per_round | laplace: L1 clipping and '
           'Laplace noise of scale multiplier x clip (pure epsilon per round). Averaging is '
           'unweighted under DP (--aggregator and --client_weighting do not apply).')
  mode: str = setting(
      'central', choices=lambda: accounting.MODES.names(), active=enabled,
      help='central: the server clips each update, sums and adds the noise once | local: each '
           'client clips and noises its own update before it leaves (epsilon is per client).')
  clip_norm: float = setting(
      1.0, checks=[_POSITIVE], active=enabled,
      help='Clip of one client update (L2 for gaussian, L1 for laplace); with '
           '--dp_adaptive_clip its initial value.')
  noise_multiplier: Optional[float] = setting(
      None, checks=[(lambda v: v >= 0, 'must be >= 0')], active=enabled, completed=True,
      help='Noise std (Laplace: scale) over the clip; 0 = no noise (epsilon infinite). '
           'Default: calibrated to --dp_target_epsilon over --total_rounds.')
  target_epsilon: Optional[float] = setting(
      None, checks=[_POSITIVE], active=enabled,
      help='Privacy budget: without --dp_noise_multiplier, the noise multiplier is calibrated '
           '(dp_accounting.mechanism_calibration) so that epsilon after --total_rounds is at '
           'most this, and recorded in hparams.json; --dp_stop_at_budget enforces it.')
  stop_at_budget: bool = setting(
      False, active=lambda f: enabled(f) and f['dp_target_epsilon'] is not None,
      applies='with --dp_target_epsilon (under a --dp_mechanism)',
      help='End the run (status budget_exhausted) before a round that would take epsilon past '
           '--dp_target_epsilon.')
  delta: Optional[float] = setting(
      None, checks=[(lambda v: 0 < v < 1, 'must be in (0, 1)')], active=enabled,
      completed=True, resolve=lambda f: (accounting.default_delta(f['num_clients'])
                         if enabled(f) and not data_settings.natural(f) else None),
      help='Delta of the reported (epsilon, delta). Default: 1 / num_clients^1.1 (for natural '
           'datasets the number of writers, once loaded).')
  accountant: str = setting(
      'rdp', choices=lambda: accounting.ACCOUNTANTS.names(), active=enabled,
      help='rdp (Renyi DP; Mironov 2017) | pld (privacy loss distributions: tighter, slower; '
           'the only one for sampled Laplace).')
  adaptive_clip: bool = setting(
      False, active=_central,
      help='Adapt the clip to the --dp_target_unclipped_quantile of update norms (Andrew et '
           'al. 2021, geometric updates), privately: the count of unclipped updates is noised '
           'too, and --dp_noise_multiplier is the effective total of both noises.')
  target_unclipped_quantile: float = setting(
      0.5, checks=[(lambda v: 0 < v < 1, 'must be in (0, 1)')], active=_adaptive,
      help='Quantile of client update norms the adaptive clip tracks (Andrew et al.: 0.5).')
  clip_learning_rate: float = setting(
      0.2, checks=[_POSITIVE], active=_adaptive,
      help='Geometric step of the adaptive clip: it moves by at most exp(rate) per round.')
  clipped_count_stddev: Optional[float] = setting(
      None, checks=[(lambda v: v >= 0, 'must be >= 0')], active=_adaptive,
      help='Std of the noise on the unclipped count. Default: max(clients_per_round / 20, '
           '1.64 x noise multiplier). TFF\'s default is only the first term, which fails (or '
           'needs > 2x value noise) for cohorts under ~10x the multiplier; the second caps the '
           'extra value noise that paying for the count costs at 5%.')


def _supported(flat) -> bool:
  if not enabled(flat) or flat['dp_mode'] != 'central':
    return True
  if flat['client_sampling'] not in accounting.SAMPLING_EVENTS:
    return False
  population = 2 * flat['clients_per_round']  # Only the kinds of events matter here.
  return accounting.PrivacyPlan(
      flat['dp_mechanism'], flat['dp_mode'], flat['client_sampling'], population,
      flat['clients_per_round'], 1e-5, flat['dp_accountant']).supported()


CROSS_CHECKS = (
    config.CrossCheck(
        ('dp_mechanism', 'dp_noise_multiplier', 'dp_target_epsilon'),
        lambda f: (not enabled(f) or f['dp_noise_multiplier'] is not None
                   or f['dp_target_epsilon'] is not None),
        lambda f: (f'--dp_mechanism={f["dp_mechanism"]} needs --dp_noise_multiplier or '
                   '--dp_target_epsilon (to calibrate the noise)')),
    config.CrossCheck(
        ('dp_adaptive_clip', 'dp_mechanism', 'dp_mode'),
        lambda f: (not _adaptive(f)
                   or mechanisms.MECHANISMS.get(f['dp_mechanism']).adaptive_clipping),
        lambda f: f'--dp_adaptive_clip is not available with --dp_mechanism={f["dp_mechanism"]}'),
    config.CrossCheck(
        ('dp_mechanism', 'algorithm'),
        lambda f: not enabled(f) or f['algorithm'] != 'fednova',
        '--dp_mechanism does not combine with --algorithm=fednova (its step-count rescaling '
        'is data-dependent and unprotected)'),
    config.CrossCheck(
        ('dp_mechanism', 'dp_accountant', 'client_sampling', 'dp_mode', 'clients_per_round'),
        _supported,
        lambda f: (f'--dp_accountant={f["dp_accountant"]} cannot account '
                   f'--dp_mechanism={f["dp_mechanism"]} with --client_sampling='
                   f'{f["client_sampling"]} (central mode); try --client_sampling=poisson '
                   'with --dp_accountant=pld')),
)
