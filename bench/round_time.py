r"""Seconds per FedAvg round on MNIST: this package vs a plain TF loop vs Keras `model.fit`.

  .venv/bin/python -m bench.round_time > /tmp/round_time.txt 2>&1

The round of McMahan et al. 2017 (10 of 100 IID clients x 600 real MNIST examples, E=1, B=10,
client SGD lr 0.1, server SGD lr 1 on the mean delta) is run three ways, each from the same
seeded initial weights on the same fixed cohort of 10 clients (the baselines: `bench.baselines`):

  plain TF loop (floor)  one `tf.function` call per client running its SGD steps over
                         in-memory tensors (fresh shuffle each epoch), numpy weighted mean.
  tff-experiments        `experiment.build_rounds` on a launch-like config, in a private
                         worker (`runtime.local_worker`), `rounds.run(state, plan)`.
  Keras model.fit        per client set_weights, compile(SGD), fit(shuffle=True), get_weights;
                         numpy weighted mean: the usual hand-written baseline (each compile
                         makes fit trace its step function again).

Each model is timed in a fresh process, because TensorFlow's thread pools are fixed per
process. The floor is the issue's: one TF thread (`--tf_threads`; it applies to the floor,
Keras and evaluation, not to the TFF worker). On 2 cores the 2NN's small ops run about twice
as fast on one thread as on both; the CNN's convolutions are faster on both, so
`--tf_threads=mnist_2nn:1,mnist_cnn:0` gives the CNN the stronger two-thread floor too. The
ways take turns round by round, so load from other jobs hits them alike. After
`--warmup_rounds` untimed rounds (one for a model whose first round exceeds `--slow_round_s`:
the CNN, already steady in round 2), up to `--rounds` rounds are timed (at least
`--min_rounds`; fewer once the model's timed rounds exceed `--timed_budget_s`, which keeps the
CNN short). The table gives the median wall time, its ratio to the floor, the
median CPU time (this process plus the TFF worker) and the test accuracy after all rounds (the
package's evaluator for every way), so a way that does not train shows up. A benchmark that
prints a table, not a test: it asserts nothing.
"""

import os

os.environ['TF_CPP_MIN_LOG_LEVEL'] = '2'  # Before TensorFlow is imported.

# pylint: disable=g-import-not-at-top,wrong-import-position
from concurrent import futures
import dataclasses
import multiprocessing
import statistics
import time
from typing import Callable, Protocol, Sequence

from absl import app
from absl import flags
import tensorflow as tf
import tensorflow_federated as tff

from bench import baselines
from bench import common
from tff_experiments import experiment
from tff_experiments import settings as settings_lib
from tff_experiments.core import seeds
from tff_experiments.evaluation import centralized
from tff_experiments.models import architectures
from tff_experiments.runner import round_plan
from tff_experiments.runtime import local_worker

_WAY_NAMES = ('floor', 'tff', 'keras')

_MODELS = flags.DEFINE_list('models', ['mnist_2nn', 'mnist_cnn'],
                            'Models to time, from '
                            'tff_experiments.models.architectures.ARCHITECTURES.')
_WAYS = flags.DEFINE_list('ways', list(_WAY_NAMES),
                          'Ways to run: floor (plain TF loop), tff (this package), keras '
                          '(model.fit).')
_ROUNDS = flags.DEFINE_integer('rounds', 10, 'Timed rounds per model and way (at most).',
                               lower_bound=1)
_WARMUP_ROUNDS = flags.DEFINE_integer(
    'warmup_rounds', 2, 'Untimed rounds first (tracing, worker start-up, caches).',
    lower_bound=0)
_SLOW_ROUND_S = flags.DEFINE_float(
    'slow_round_s', 20.0,
    'A model whose first round (all ways together) takes longer gets one warm-up round, not '
    '--warmup_rounds: its tracing is then a small share and round 2 is already steady (the '
    'CNN), and each extra round costs most of a minute.', lower_bound=0.0)
_MIN_ROUNDS = flags.DEFINE_integer('min_rounds', 3, 'Timed rounds at least.', lower_bound=1)
_TIMED_BUDGET_S = flags.DEFINE_float(
    'timed_budget_s', 90.0,
    'No new timed round of a model starts once its timed rounds (all ways) took this long and '
    'there are --min_rounds. 0: always --rounds.', lower_bound=0.0)
_TF_THREADS = flags.DEFINE_list(
    'tf_threads', ['mnist_2nn:1', 'mnist_cnn:1'],
    'model:threads pairs: TensorFlow intra- and inter-op threads of the process timing that '
    'model (not of the TFF worker). Models not listed get TF\'s default (all cores).')
_COHORT_SIZE = flags.DEFINE_integer(
    'cohort_size', 10, 'Clients per round; the same first clients (by id) every round.',
    lower_bound=1)



@dataclasses.dataclass(frozen=True)
class Settings:
  """The flags a model's timing needs, passed explicitly to the process that times it."""
  ways: tuple[str, ...]
  rounds: int
  warmup_rounds: int
  slow_round_s: float
  min_rounds: int
  timed_budget_s: float
  cohort_size: int


class Way(Protocol):
  """One way of running the FedAvg round: advances its own global model by a round."""
  name: str

  def run_round(self, round_num: int) -> None:
    """Runs round `round_num` (1-based) and keeps the new global model."""

  def weights(self) -> tff.learning.models.ModelWeights:
    """The current global model, for evaluation."""


@dataclasses.dataclass
class Timing:
  """What one way measured on one model."""
  model: str
  way: str
  setup_s: float  # Building the way (for the package: the learning process), untimed.
  warmup: list[float] = dataclasses.field(default_factory=list)  # Wall s, warm-up rounds.
  seconds: list[float] = dataclasses.field(default_factory=list)  # Wall s, timed rounds.
  cpu_seconds: list[float] = dataclasses.field(default_factory=list)  # CPU s, timed rounds.
  accuracy: float = float('nan')  # Test accuracy after all rounds.


def experiment_config(model: str, settings: Settings) -> settings_lib.ExperimentConfig:
  """The config `launch.run_experiment` would build for this round (its flag defaults else)."""
  mnist = common.MCMAHAN_MNIST
  return settings_lib.from_flat(dict(
      experiment_name='bench_round_time', root_output_dir=common.OUT_DIR,
      dataset=mnist['dataset'], data_dir=mnist['data_dir'], cache_dir=common.CACHE_DIR,
      partition='iid', num_clients=mnist['num_clients'], model=model,
      clients_per_round=settings.cohort_size, client_epochs_per_round=baselines.EPOCHS,
      client_batch_size=mnist['client_batch_size'],
      client_learning_rate=mnist['client_learning_rate'],
      server_optimizer=mnist['server_optimizer'],
      server_learning_rate=mnist['server_learning_rate'],
      total_rounds=settings.warmup_rounds + settings.rounds, seed=mnist['seed']))


class PackageProcess:
  """(a) This package's learning process over client keys, run in its private worker."""
  name = 'tff-experiments'

  def __init__(self, config: settings_lib.ExperimentConfig, data, cohort: Sequence[str]):
    self._rounds = experiment.build_rounds(config, data, experiment.build_model(config, data))
    self._state = self._rounds.initialize()
    self._cohort, self._seed = tuple(cohort), config.run.seed

  def run_round(self, round_num: int) -> None:
    """One round on the fixed cohort (shuffle seeds vary with the round)."""
    plan = round_plan.RoundPlan(
        round_num=round_num, sampled=self._cohort, step_caps={c: None for c in self._cohort},
        shuffle_seeds={c: seeds.derive(self._seed, purpose='shuffle', round_num=round_num,
                                       client=c) for c in self._cohort},
        update_seeds=round_plan.update_seeds(self._seed, round_num, self._cohort))
    self._state = self._rounds.run(self._state, plan).state

  def weights(self) -> tff.learning.models.ModelWeights:
    return self._rounds.get_model_weights(self._state)


def timed_round(way: Way, round_num: int) -> tuple[float, float]:
  """Runs one round of `way`; returns its wall and CPU seconds."""
  cpu_began = common.cpu_seconds()
  began = time.perf_counter()
  way.run_round(round_num)
  return time.perf_counter() - began, common.cpu_seconds() - cpu_began


def more_timed_rounds(timings: Sequence[Timing], settings: Settings) -> bool:
  """Whether to time another round: up to `rounds`, at least `min_rounds`, within budget."""
  done = len(timings[0].seconds)
  if done >= settings.rounds:
    return False
  spent = sum(sum(t.seconds) for t in timings)
  return (done < settings.min_rounds or not settings.timed_budget_s
          or spent < settings.timed_budget_s)


def run_interleaved(ways: Sequence[Way], timings: Sequence[Timing], settings: Settings) -> int:
  """Runs the warm-up then the timed rounds, each round way after way; returns rounds run.

  Warm-up is `warmup_rounds`, or one round when round 1 took over `slow_round_s`.
  """
  warmup_rounds, round_num = settings.warmup_rounds, 0
  while round_num < warmup_rounds or more_timed_rounds(timings, settings):
    round_num += 1
    for way, timing in zip(ways, timings):
      wall, cpu = timed_round(way, round_num)
      if round_num <= warmup_rounds:
        timing.warmup.append(wall)
      else:
        timing.seconds.append(wall)
        timing.cpu_seconds.append(cpu)
    if round_num == 1 and sum(t.warmup[0] for t in timings if t.warmup) > settings.slow_round_s:
      warmup_rounds = min(warmup_rounds, 1)
  return round_num


def _spaced(values: Sequence[float]) -> str:
  """Seconds as a short space-separated list for the progress lines."""
  return ' '.join(f'{v:.3f}' for v in values)


def time_model(model: str, settings: Settings, tf_threads: int) -> list[Timing]:
  """Times the chosen ways on `model`, all from the same initial weights on the same cohort.

  Needs a TFF context for the package's way (see `time_model_in_fresh_process`).
  """
  config = experiment_config(model, settings)
  data = experiment.load_data(config)
  cohort = sorted(data.train.client_ids)[:config.schedule.clients_per_round]
  clients = baselines.read_clients(data.train, cohort)
  evaluate = centralized.build_evaluator(experiment.build_model(config, data),
                                         test_x=data.test_x, test_y=data.test_y)
  initial_weights = baselines.build_keras(model, data).get_weights()
  initial = evaluate(baselines.as_model_weights(initial_weights))['accuracy']
  print(f'{model}: cohort {cohort[0]}..{cohort[-1]} ({sum(len(c.y) for c in clients)} '
        f'examples), TF threads {tf_threads or "default"}; initial test acc {initial:.4f}',
        flush=True)
  makers: dict[str, Callable[[], Way]] = {
      'floor': lambda: baselines.PlainLoop(model, data, clients),
      'tff': lambda: PackageProcess(config, data, cohort),
      'keras': lambda: baselines.KerasFit(model, data, clients)}
  # The package's way is built first: tracing its client computation builds Keras models in
  # TF graphs, and Keras then swaps its layer classes to their v1 bases, which breaks eager
  # Keras models made before (the floor's and fit's).
  built = {}
  for name in sorted(settings.ways, key=lambda n: n != 'tff'):
    began = time.perf_counter()
    built[name] = (makers[name](), time.perf_counter() - began)
  ways = [built[name][0] for name in settings.ways]
  timings = [Timing(model=model, way=built[name][0].name, setup_s=built[name][1])
             for name in settings.ways]
  rounds = run_interleaved(ways, timings, settings)
  for way, timing in zip(ways, timings):
    timing.accuracy = evaluate(way.weights())['accuracy']
    print(f'  {timing.way}: setup {timing.setup_s:.2f} s, warm-up {_spaced(timing.warmup)} s, '
          f'timed {_spaced(timing.seconds)} s (CPU {_spaced(timing.cpu_seconds)} s); test acc '
          f'{timing.accuracy:.4f} after {rounds} rounds', flush=True)
  return timings


def _time_model_here(model: str, settings: Settings, tf_threads: int) -> list[Timing]:
  """Body of the fresh process: thread pools first, then a private TFF worker for the model."""
  tf.get_logger().setLevel('ERROR')
  if tf_threads:
    tf.config.threading.set_intra_op_parallelism_threads(tf_threads)
    tf.config.threading.set_inter_op_parallelism_threads(tf_threads)
  log_path = os.path.join(common.ensure_out_dir(), f'round_time_worker_{model}.log')
  with local_worker.local_worker(log_path=log_path):
    return time_model(model, settings, tf_threads)


def time_model_in_fresh_process(model: str, settings: Settings,
                                tf_threads: int) -> list[Timing]:
  """Times `model` in a spawned process, whose TF thread pools can still be configured."""
  context = multiprocessing.get_context('spawn')
  with futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as executor:
    return executor.submit(_time_model_here, model, settings, tf_threads).result()


def table(timings: Sequence[Timing]) -> str:
  """model | way | median s/round | ratio to floor | spread | CPU and its ratio | setup |
  test accuracy. CPU is the mean over the timed rounds: CPU clocks tick in 10 ms, so a mean
  over many rounds resolves what a median of ticks cannot."""
  floors = {t.model: t for t in timings if t.way == baselines.FLOOR}
  rows = []
  for t in timings:
    median, cpu = statistics.median(t.seconds), statistics.mean(t.cpu_seconds)
    floor = floors.get(t.model)
    ratio = f'{median / statistics.median(floor.seconds):.2f}x' if floor else '-'
    cpu_ratio = f'{cpu / statistics.mean(floor.cpu_seconds):.2f}x' if floor else '-'
    first = f'{t.warmup[0]:.1f}' if t.warmup else '-'
    rows.append([t.model, t.way, f'{median:.3f}', ratio,
                 f'{min(t.seconds):.3f}-{max(t.seconds):.3f}', f'{cpu:.3f}', cpu_ratio,
                 len(t.seconds), f'{t.setup_s:.1f} + {first}',
                 f'{t.accuracy:.4f} ({len(t.warmup) + len(t.seconds)})'])
  return common.format_table(
      ['model', 'way', 'median s/round', 'ratio to floor', 'min-max s', 'mean CPU s/round',
       'CPU vs floor', 'timed rounds', 'setup + 1st round s', 'test acc (after rounds)'], rows)


def settings_from_flags() -> Settings:
  """The validated flags as Settings (UsageError naming unknown --ways or --models)."""
  unknown = sorted(set(_WAYS.value) - set(_WAY_NAMES))
  unknown += sorted(set(_MODELS.value) - set(architectures.ARCHITECTURES.names()))
  if unknown:
    raise app.UsageError(f'unknown --ways/--models values: {unknown}')
  return Settings(ways=tuple(_WAYS.value), rounds=_ROUNDS.value,
                  warmup_rounds=_WARMUP_ROUNDS.value, slow_round_s=_SLOW_ROUND_S.value,
                  min_rounds=_MIN_ROUNDS.value, timed_budget_s=_TIMED_BUDGET_S.value,
                  cohort_size=_COHORT_SIZE.value)


def threads_by_model() -> dict[str, int]:
  """--tf_threads as {model: threads} (UsageError on a malformed pair)."""
  threads = {}
  for pair in _TF_THREADS.value:
    model, _, count = pair.partition(':')
    if model not in architectures.ARCHITECTURES or not count.isdigit():
      raise app.UsageError(f'--tf_threads: expected model:threads, got {pair!r}')
    threads[model] = int(count)
  return threads


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  settings, threads = settings_from_flags(), threads_by_model()
  began = time.perf_counter()
  print(common.machine_line(), flush=True)
  timings = []
  for model in _MODELS.value:
    timings.extend(time_model_in_fresh_process(model, settings, threads.get(model, 0)))
  print(f'\nFedAvg round on MNIST (IID, {settings.cohort_size} fixed clients x 600, '
        f'E={baselines.EPOCHS}, '
        f'B={common.MCMAHAN_MNIST["client_batch_size"]}, client SGD lr '
        f'{common.MCMAHAN_MNIST["client_learning_rate"]}, server SGD lr '
        f'{common.MCMAHAN_MNIST["server_learning_rate"]}); ways take turns each round; median '
        f'of up to {settings.rounds} timed rounds (at least {settings.min_rounds}, budget '
        f'{settings.timed_budget_s:.0f} s per model) after {settings.warmup_rounds} warm-up (1 '
        f'when round 1 took over {settings.slow_round_s:.0f} s); driver TF threads: '
        + ', '.join(f'{m} {threads.get(m, 0) or "default"}' for m in _MODELS.value))
  print(common.machine_line())
  print(table(timings))
  print(f'total {time.perf_counter() - began:.0f} s')


if __name__ == '__main__':
  app.run(main)
