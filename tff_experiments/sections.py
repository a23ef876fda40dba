"""The sections of an experiment's settings; each field is its flag (see `core.config`).

Adding a flag = adding one field here, with its help and checks. `settings.ExperimentConfig`
composes the sections; `tff_experiments.flag_binding` binds every field to an absl flag.
"""

import dataclasses
import os
from typing import ClassVar, Optional

from tff_experiments.aggregators import layers
from tff_experiments.algorithms import registry as algorithms
from tff_experiments.algorithms import server_optimizers
from tff_experiments.clients import federated_data
from tff_experiments.clients import local_update
from tff_experiments.clients import lr_schedules
from tff_experiments.core import config
from tff_experiments.core import seeds
from tff_experiments.models import architectures
from tff_experiments.runner import round_plan
from tff_experiments.runtime import remote_workers

setting = config.setting
_POSITIVE = config.POSITIVE
_AT_LEAST_1 = config.AT_LEAST_1
_SEED_RANGE = seeds.SEED_CHECK
_NAME = (lambda v: bool(v.strip()) and os.sep not in v and v not in ('.', '..'),
         'must be a non-empty directory name without path separators (not . or ..)')


@dataclasses.dataclass(frozen=True)
class RunSettings(config.Section):
  """Where the run lives, and the seed of everything random except the client split."""
  experiment_name: Optional[str] = setting(
      None, location=True, checks=[_NAME],
      help='Run directory name under --root_output_dir. Default: readable from the dataset, '
           'algorithm, model, partition and non-default flags, plus a hash of all settings, so '
           'the same command resumes (or skips) its run instead of starting a new one.')
  root_output_dir: str = setting('results', location=True,
                                 help='Where run directories are created.')
  worker_timeout_s: Optional[float] = setting(
      None, location=True, checks=[_POSITIVE],
      help='A round still running after this many seconds means the TFF worker stopped '
           'answering: the run fails (resumable) instead of hanging. Default: 20x the slowest '
           'round so far, at least 600 s.')
  workers: Optional[tuple[str, ...]] = setting(
      None, location=True, active=lambda f: bool(f['workers']),
      checks=[(lambda v: len(v) >= 1 and not any(map(remote_workers.target_error, v)),
               'must be host:port,host:port,... (port 1-65535) or unix:/path/of/socket '
               'entries')],
      help='TFF worker services (python -m launch.worker --port=P on each machine, or '
           '--socket=PATH reached as unix:LOCAL_PATH through an SSH tunnel) that run '
           'the simulation instead of a private local worker: each trains its share of every '
           'round\'s clients (TFF\'s mergeable execution context), with the same metrics as a '
           'local run. Workers read client files at the driver\'s --cache_dir path.')
  worker_connect_timeout_s: float = setting(
      10.0, location=True, checks=[_POSITIVE], active=lambda f: bool(f['workers']),
      applies='with --workers',
      help='--workers: how long a worker may take to answer at start, or stay unreachable '
           'during a run, before the run fails (resumable) instead of waiting for ever.')
  tensorboard: bool = setting(
      True, location=True,
      help='Also write each round\'s metrics as TensorBoard scalars (step = round) into '
           '<run_dir>/tensorboard/; view with tensorboard --logdir=<root_output_dir>.')
  seed: int = setting(
      0, checks=[_SEED_RANGE],
      help='Seed of model init, cohort sampling, shuffles and every random layer; each stream '
           'is derived from (seed, round, client, purpose). The client split has --split_seed.')


@dataclasses.dataclass(frozen=True)
class ModelSettings(config.Section):
  """The model architecture."""
  model: Optional[str] = setting(
      None, choices=architectures.ARCHITECTURES.names,
      resolve=lambda f: federated_data.DATASETS.get(f['dataset']).default_model,
      help="Model: mnist_2nn, mnist_cnn, emnist_cnn (McMahan et al. 2017), lenet (NIID-Bench; "
           "images >= 16x16), digits_mlp, logistic (softmax regression, FedProx's). Default: the "
           "dataset's own (digits_mlp, mnist_2nn, emnist_cnn, logistic for synthetic).")
  mlp_hidden_units: Optional[tuple[int, ...]] = setting(
      None, checks=[(lambda v: len(v) >= 1 and min(v) >= 1, 'must be widths >= 1')],
      active=lambda f: architectures.is_mlp(f['model']),
      resolve=lambda f: architectures.ARCHITECTURES.get(f['model']).hidden_units,
      help='MLP models (mnist_2nn, digits_mlp): hidden layer widths, comma-separated. '
           "Default: the model's own (200,200 for McMahan's 2NN; 32 for digits_mlp).")


@dataclasses.dataclass(frozen=True)
class AlgorithmSettings(config.Section):
  """The federated algorithm (a TFF learning process)."""
  algorithm: str = setting(
      'fedavg', choices=algorithms.ALGORITHMS.names,
      help='Learning algorithm: fedavg | fedprox (--proximal_mu) | fedsgd (one full-batch '
           'gradient step per client) | fednova (normalized averaging of Wang et al. 2020).')
  proximal_mu: float = setting(
      0.01, checks=[(lambda v: v >= 0, 'must be >= 0')],
      active=lambda f: f['algorithm'] == 'fedprox',
      help='FedProx proximal strength mu: clients minimize loss + mu/2 ||w - w_global||^2 '
           '(0: exactly FedAvg; 0.01 as in NIID-Bench).')


@dataclasses.dataclass(frozen=True)
class ClientSettings(config.Section):
  """The client update (`--client_*`)."""
  flag_prefix: ClassVar[str] = 'client_'
  epochs_per_round: int = setting(1, checks=[_AT_LEAST_1], help='Local epochs E.')
  batch_size: int = setting(10, checks=[_AT_LEAST_1], help='Local batch size B.')
  learning_rate: float = setting(0.1, checks=[_POSITIVE], help='Client SGD learning rate.')
  momentum: float = setting(
      0.0, checks=[(lambda v: 0 <= v < 1, 'must be in [0, 1)')],
      active=lambda f: f['algorithm'] != 'fedsgd' or f['personalization_epochs'] > 0,
      help='Heavy-ball momentum m of local SGD (PyTorch, as in NIID-Bench: buf = m buf + g, '
           'w -= lr buf; the buffer starts at 0 for every client every round); 0: plain SGD. '
           'fedavg, fedprox, fednova (normalizing by its momentum ||a||_1, Wang et al. 2020) and '
           'personalization fine-tuning; fedsgd takes one step, where it has no effect.')
  lr_schedule: str = setting(
      'constant', choices=lr_schedules.LR_SCHEDULES.names,
      help='Client learning rate over rounds r = 1, 2, ...: constant | exp_decay (lr * '
           '--client_lr_decay^(r-1)) | inv_sqrt_decay (lr / sqrt(r)). Recorded per round as '
           'plan/client_learning_rate.')
  lr_decay: float = setting(
      0.99, checks=[(lambda v: 0 < v <= 1, 'must be in (0, 1]')],
      active=lambda f: f['client_lr_schedule'] == 'exp_decay',
      help='Per-round factor of --client_lr_schedule=exp_decay (0.99).')
  max_steps: Optional[int] = setting(
      None, checks=[_AT_LEAST_1],
      help='Cap on local SGD steps per client and round (default: E full epochs).')
  straggler_fraction: float = setting(
      0.0, flag='straggler_fraction', checks=[(lambda v: 0 <= v <= 1, 'must be in [0, 1]')],
      help='Fraction of each round\'s sampled clients (drawn from seed and round) that are '
           'stragglers, handled by --straggler_policy.')
  straggler_policy: str = setting(
      'partial', flag='straggler_policy', choices=round_plan.STRAGGLER_POLICIES.names,
      active=lambda f: f['straggler_fraction'] > 0, applies='when --straggler_fraction > 0',
      help='drop: stragglers do not report | partial: each runs a uniformly random number of '
           'local steps between 1 and its full amount (as in the FedProx paper).')
  dropout_rate: float = setting(
      0.0, checks=[(lambda v: 0 <= v < 1, 'must be in [0, 1)')],
      help='Probability that a sampled client fails to report in a round (seeded by seed and '
           'round; a round where nobody reports is skipped).')
  weighting: Optional[str] = setting(
      None, choices=local_update.WEIGHTINGS.names,
      active=lambda f: f['dp_mechanism'] == 'none',
      resolve=lambda f: algorithms.default_client_weighting(f['algorithm']),
      help='Aggregation weight of a client update: num_examples (examples processed, '
           "McMahan's n_k) | dataset_size (the client's examples, however many it processed) | "
           "uniform (1 per client). Default: the algorithm's paper's, dataset_size for fednova "
           "(Wang et al.'s p_i = n_i / n, also under partial work), num_examples otherwise.")


@dataclasses.dataclass(frozen=True)
class ServerSettings(config.Section):
  """The server optimizer applied to the aggregated update (`--server_*`)."""
  flag_prefix: ClassVar[str] = 'server_'
  optimizer: str = setting('sgd', choices=server_optimizers.SERVER_OPTIMIZERS.names,
                           help='Server optimizer applied to the averaged update (sgd at lr 1 = '
                                'FedAvg).')
  learning_rate: float = setting(1.0, checks=[_POSITIVE], help='Server learning rate.')
  momentum: float = setting(0.9, checks=[(lambda v: 0 <= v < 1, 'must be in [0, 1)')],
                            active=lambda f: server_optimizers.uses(f['server_optimizer'],
                                                                    'momentum'),
                            help='Momentum of --server_optimizer=sgdm.')
  beta_1: float = setting(
      0.9, checks=[(lambda v: 0 <= v < 1, 'must be in [0, 1)')],
      active=lambda f: server_optimizers.uses(f['server_optimizer'], 'beta_1'),
      help='adam/yogi first-moment decay (Reddi et al. 2021: 0.9).')
  beta_2: float = setting(
      0.99, checks=[(lambda v: 0 <= v < 1, 'must be in [0, 1)')],
      active=lambda f: server_optimizers.uses(f['server_optimizer'], 'beta_2'),
      help='adam/yogi second-moment decay (Reddi et al. 2021: 0.99).')
  epsilon: float = setting(
      1e-3, checks=[_POSITIVE],
      active=lambda f: server_optimizers.uses(f['server_optimizer'], 'epsilon'),
      help='adam/yogi/adagrad adaptivity (Reddi et al. 2021\'s tau, tuned per task there; '
           '1e-3).')


@dataclasses.dataclass(frozen=True)
class AggregationSettings(config.Section):
  """The aggregator stack (see `aggregators.layers`): update layers, the mean, sum layers."""
  aggregator: str = setting('mean', choices=layers.mean_names,
                            active=lambda f: f['dp_mechanism'] == 'none',
                            help='How client updates are averaged: mean (weighted by '
                                 '--client_weighting) | unweighted_mean. (Under '
                                 '--dp_mechanism averaging is unweighted.)')
  zeroing_norm: Optional[float] = setting(
      None, checks=[_POSITIVE],
      help='Replace by zeros a client update whose L2 norm exceeds this (its weight still '
           'counts, as in TFF\'s zeroing_factory; default: off).')
  clip_norm: Optional[float] = setting(
      None, checks=[_POSITIVE],
      help='Scale each client update down to this L2 norm before averaging (default: off).')
  quantization: str = setting(
      'none', choices=lambda: list(layers.QUANTIZATION_SCHEMES),
      help='Uplink compression of each client update: none (float32) | uniform (b-bit '
           'uniform levels between the tensor\'s min and max; min/max rather than +-max|x| '
           'because it uses every level when a tensor is not centred on 0, for 2 floats of '
           'side information per tensor).')
  quantization_bits: int = setting(
      8, checks=[(lambda v: 1 <= v <= 16, 'must be in [1, 16]')],
      active=lambda f: f['quantization'] != 'none', help='Bits per quantized value.')
  quantization_rounding: str = setting(
      'stochastic', choices=lambda: ['stochastic', 'deterministic'],
      active=lambda f: f['quantization'] != 'none',
      help='stochastic: round up with probability equal to the distance from the lower level, '
           'so the decoded update is unbiased (QSGD) | deterministic: nearest level.')
  quantization_rotation: str = setting(
      'none', choices=lambda: ['none', 'hadamard'],
      active=lambda f: f['quantization'] != 'none',
      help='hadamard: seeded randomized Hadamard rotation (blocks of <= 4096) before '
           'quantizing, inverted on the server, so one large coordinate no longer stretches '
           'the range (Suresh et al. 2017).')
  downlink_bits: int = setting(
      32, checks=[(lambda v: 1 <= v <= 16 or v == 32, 'must be in [1, 16], or 32 (float)')],
      help='Bits per value of the model broadcast to clients (32: float32, not quantized).')


@dataclasses.dataclass(frozen=True)
class ScheduleSettings(config.Section):
  """Rounds, cohorts, evaluation and checkpoints."""
  total_rounds: int = setting(100, checks=[_AT_LEAST_1], help='Training rounds.')
  clients_per_round: int = setting(10, checks=[_AT_LEAST_1], help='Clients sampled per round.')
  client_sampling: str = setting(
      'uniform', choices=round_plan.SAMPLERS.names,
      help='How a round\'s cohort is drawn: uniform (clients_per_round distinct clients) | '
           'poisson (each client joins independently with probability clients_per_round / '
           'num_clients: the cohort size varies, plan/clients_sampled records it).')
  rounds_per_eval: int = setting(1, checks=[_AT_LEAST_1],
                                 help='Evaluate on the test set every N rounds (and last).')
  rounds_per_checkpoint: int = setting(10, checks=[_AT_LEAST_1],
                                       help='Checkpoint every N rounds (and last).')
  target_accuracy: Optional[float] = setting(
      None, checks=[(lambda v: 0 < v <= 1, 'must be in (0, 1]')],
      help='Test accuracy whose first (interpolated) round summary.json reports.')
  stop_at_target: bool = setting(
      False, active=lambda f: f['target_accuracy'] is not None, applies='with --target_accuracy',
      help='End the run (status target_reached) after the first evaluation at or above '
           '--target_accuracy, so rounds-to-target sweeps spend no time after it.')


def _personalizing(flat) -> bool:
  return flat['personalization_epochs'] > 0


_WHEN_PERSONALIZING = 'when --personalization_epochs > 0'


@dataclasses.dataclass(frozen=True)
class PersonalizationSettings(config.Section):
  """Fine-tuning the global model on clients' own data (`--personalization_*`)."""
  flag_prefix: ClassVar[str] = 'personalization_'
  epochs: int = setting(
      0, checks=[(lambda v: v >= 0, 'must be >= 0')],
      help='Local epochs with which, at every evaluation round, --personalization_clients '
           'clients fine-tune the global model (local_sgd) on their training part; their '
           'held-out part is evaluated before and after (personalization/before_accuracy_mean, '
           '_p10, after_...). 0: off, and no client holds data out.')
  batch_size: Optional[int] = setting(
      None, checks=[_AT_LEAST_1], active=_personalizing, applies=_WHEN_PERSONALIZING,
      resolve=lambda f: f['client_batch_size'],
      help='Fine-tuning batch size (default: --client_batch_size).')
  learning_rate: Optional[float] = setting(
      None, checks=[_POSITIVE], active=_personalizing, applies=_WHEN_PERSONALIZING,
      resolve=lambda f: f['client_learning_rate'],
      help='Fine-tuning learning rate (default: --client_learning_rate, not its schedule).')
  clients: int = setting(
      20, checks=[_AT_LEAST_1], active=_personalizing, applies=_WHEN_PERSONALIZING,
      help='Clients fine-tuned at each evaluation, drawn once from --seed (the same every '
           'evaluation, so the curves compare); at most all clients.')
  holdout_fraction: float = setting(
      0.2, checks=[(lambda v: 0 < v < 1, 'must be in (0, 1)')], active=_personalizing,
      applies=_WHEN_PERSONALIZING,
      help='Share of every client\'s examples held out from training, for evaluating '
           'personalization: round(fraction x n), seeded by --split_seed and the client; each '
           'client keeps at least one training example.')
