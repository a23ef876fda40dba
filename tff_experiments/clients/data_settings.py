"""The data section of an experiment's settings: the dataset and its client split.

One field = one flag (see `core.config`); `settings.ExperimentConfig` composes it with the other
sections (`sections.py`). Kept apart because the datasets' own parameters (e.g. synthetic's)
live here too.
"""

import dataclasses
import os
from typing import Optional

from datasets import synthetic
from tff_experiments.clients import federated_data
from tff_experiments.core import config
from tff_experiments.core import seeds

setting = config.setting
_POSITIVE = config.POSITIVE
_AT_LEAST_1 = config.AT_LEAST_1
_SEED_RANGE = seeds.SEED_CHECK
# Synthetic's alpha and beta: larger values overflow its float32 generator (see there).
_SYNTHETIC_SCALE = (lambda v: 0 <= v <= synthetic.MAX_SCALE,
                    f'must be in [0, {synthetic.MAX_SCALE:g}] (larger values overflow the '
                    "generator's float32 logits)")


def natural(flat) -> bool:
  """Whether the dataset of the flat settings has a natural (per-writer) client split."""
  return federated_data.DATASETS.get(flat['dataset']).natural_split


def fixed_population(flat) -> bool:
  """Whether the data fixes the clients (writers): natural and not generated (synthetic's
  natural clients are drawn: --num_clients and --split_seed set them)."""
  info = federated_data.DATASETS.get(flat['dataset'])
  return info.natural_split and not info.generated


def _synthetic(flat) -> bool:
  return flat['dataset'] == 'synthetic'


@dataclasses.dataclass(frozen=True)
class DataSettings(config.Section):
  """The federated dataset and its client split."""
  dataset: str = setting('digits', choices=federated_data.DATASETS.names,
                         help='Dataset; digits is embedded (scikit-learn) and needs no download.')
  data_dir: Optional[str] = setting(
      None, location=True, path=True,
      help='Directory of the raw data (mnist: IDX .gz files; emnist: TFF sqlite cache; '
           'femnist_leaf: LEAF train/ and test/). Missing mnist/emnist files are downloaded '
           'into it when online.')
  cache_dir: str = setting(os.path.join('~', '.cache', 'tff_experiments'), location=True,
                           path=True,
                           help='Where per-client data files are cached.')
  only_digits: bool = setting(False, active=fixed_population,
                              help='emnist/femnist_leaf: keep the 10 digit classes only.')
  partition: Optional[str] = setting(
      None, choices=federated_data.all_partitions,
      resolve=lambda f: federated_data.NATURAL if natural(f) else 'iid',
      help='Client split: iid | shards (McMahan et al. 2017 pathological non-IID, 2 '
           'label-sorted shards per client) | dirichlet (label skew, --dirichlet_alpha) | '
           'label_quantity (NIID-Bench #C=k: k labels per client, --labels_per_client) | '
           'natural (per-writer; emnist, femnist_leaf; synthetic: a distribution per client). '
           'Default: natural for natural datasets, else iid.')
  num_clients: int = setting(100, checks=[_AT_LEAST_1], active=lambda f: not fixed_population(f),
                             help='Clients to split a centralized dataset into; synthetic: the '
                                  'population drawn.')
  dirichlet_alpha: float = setting(0.5, checks=[_POSITIVE],
                                   active=lambda f: f['partition'] == 'dirichlet',
                                   help='Concentration of the dirichlet partition (> 0).')
  labels_per_client: int = setting(
      2, checks=[_AT_LEAST_1], active=lambda f: f['partition'] == 'label_quantity',
      help='Distinct labels per client of the label_quantity partition (NIID-Bench #C=k, Li '
           'et al. 2021): client i holds label i mod K and k-1 random others, each label split '
           'equally among its holders; at most the number of classes.')
  split_seed: int = setting(
      0, checks=[_SEED_RANGE],
      active=lambda f: not fixed_population(f) or f['personalization_epochs'] > 0,
      help='Seed of the client split (fixed default 0), apart from --seed so that repetitions '
           'over --seed train on one split; synthetic: of the whole population\'s data; also of '
           'the clients\' held-out parts (--personalization_holdout_fraction).')
  synthetic_alpha: float = setting(
      1.0, checks=[_SYNTHETIC_SCALE],
      active=lambda f: _synthetic(f) and not f['synthetic_iid'],
      help='synthetic: std of u_k, the mean of client k\'s softmax model W_k, b_k ~ N(u_k, 1): '
           'how much client models differ (FedProx\'s Synthetic(alpha, beta): 0, 0.5 or 1).')
  synthetic_beta: float = setting(
      1.0, checks=[_SYNTHETIC_SCALE],
      active=lambda f: _synthetic(f) and not f['synthetic_iid'],
      help='synthetic: std of B_k, the mean of client k\'s feature mean v_k ~ N(B_k, 1): how '
           'much client features differ.')
  synthetic_iid: bool = setting(
      False, active=_synthetic,
      help='synthetic: FedProx\'s synthetic_iid instead: one W, b ~ N(0, 1) for every client and '
           'features x ~ N(0, Sigma); client sizes still follow the power law.')
  synthetic_max_examples: int = setting(
      10_000, checks=[(lambda v: v >= 50, 'must be >= 50 (the fewest a client draws)')],
      active=_synthetic,
      help='synthetic: cap on a client\'s examples n_k = floor(lognormal(4, 2)) + 50 (90% '
           'train): bounds a round\'s cost under the heavy tail (~0.5% of clients reach the '
           'default 10,000, whose 9,000 training examples the client shuffle buffer still holds '
           'whole).')
