r"""Data preparation and round time against the population: synthetic at 10^3 .. 10^5 clients.

  .venv/bin/python -m bench.population > /tmp/population.txt 2>&1

For each population N (`--populations`) the synthetic dataset (Synthetic(1, 1), seed 0) is
loaded (timed: `experiment.load_data`, the data preparation, including the centralized test set
of 1,000 clients' test parts) and FedAvg's learning process built for it (logistic model, E=1,
B=10, client SGD lr 0.1, seed 0) in one process and one private TFF worker. Rounds then take
turns across the populations, so load from other jobs hits them alike. A round is what a run's
round is: the package's `RoundPlanner` plans it over all N clients (uniform sampling, the only
per-round work that sees N), then its round runner trains a cohort of 10 clients. To compare
populations and not luck of the draw (client sizes are heavy-tailed), the trained cohort is the
same in every population: 10 of clients 0..999, drawn per round from (seed, round); clients
are drawn from their index, so client k holds the same data at every N. E=1 keeps the client
compute small, so a cost that grew with N would show the most. The table gives the preparation
seconds, the building of the process, the planner's milliseconds per round, the median wall
and CPU (this process and the worker) seconds per round (plan + round) after `--warmup_rounds`,
and their ratios to the first population (CPU is the steadier on a shared machine).
A benchmark that prints a table, not a test: it asserts nothing.
"""

import os

os.environ['TF_CPP_MIN_LOG_LEVEL'] = '2'  # Before TensorFlow is imported.

# pylint: disable=g-import-not-at-top,wrong-import-position
import dataclasses
import statistics
import time
from typing import Sequence

from absl import app
from absl import flags

from bench import common
from tff_experiments import experiment
from tff_experiments import settings as settings_lib
from tff_experiments.core import seeds
from tff_experiments.runner import round_plan
from tff_experiments.runtime import local_worker

_POPULATIONS = flags.DEFINE_list('populations', ['1000', '10000', '100000'],
                                 'Populations (clients) to compare; ratios are to the first.')
_ROUNDS = flags.DEFINE_integer('rounds', 20, 'Timed rounds per population.', lower_bound=1)
_WARMUP_ROUNDS = flags.DEFINE_integer('warmup_rounds', 2, 'Untimed rounds first (tracing).',
                                      lower_bound=0)
_COHORT_SIZE = flags.DEFINE_integer('cohort_size', 10, 'Clients trained per round.',
                                    lower_bound=1)
_COHORT_FROM = 1000  # The trained cohort is drawn from clients 0 .. _COHORT_FROM - 1.
_SEED = 0


@dataclasses.dataclass
class Population:
  """One population's built pieces and what it measured."""
  num_clients: int
  prepare_s: float
  setup_s: float
  rounds: object
  planner: round_plan.RoundPlanner
  client_ids: list[str]
  state: object = None
  plan_s: list[float] = dataclasses.field(default_factory=list)
  round_s: list[float] = dataclasses.field(default_factory=list)
  cpu_s: list[float] = dataclasses.field(default_factory=list)


def config_for(num_clients: int) -> settings_lib.ExperimentConfig:
  """The config `launch.run_experiment --dataset=synthetic --num_clients=N` would build."""
  return settings_lib.from_flat(dict(
      experiment_name='bench_population', root_output_dir=common.OUT_DIR, dataset='synthetic',
      num_clients=num_clients, model='logistic', clients_per_round=_COHORT_SIZE.value,
      client_epochs_per_round=1, client_batch_size=10, client_learning_rate=0.1,
      seed=_SEED, split_seed=_SEED))


def build(num_clients: int) -> Population:
  """Loads the population (timed) and builds its learning process and planner."""
  config = config_for(num_clients)
  began = time.perf_counter()
  data = experiment.load_data(config)
  prepared = time.perf_counter()
  rounds = experiment.build_rounds(config, data, experiment.build_model(config, data))
  population = Population(
      num_clients=num_clients, prepare_s=prepared - began,
      setup_s=time.perf_counter() - prepared, rounds=rounds,
      planner=experiment.build_planner(config, data), client_ids=data.train.client_ids)
  population.state = rounds.initialize()
  return population


def cohort(round_num: int) -> list[int]:
  """The client indices trained in `round_num`, the same in every population."""
  rng = seeds.generator(_SEED, purpose='bench_population_cohort', round_num=round_num)
  return sorted(rng.choice(_COHORT_FROM, _COHORT_SIZE.value, replace=False).tolist())


def run_round(population: Population, round_num: int) -> tuple[float, float, float]:
  """Plans the round over the whole population, trains the shared cohort; (plan s, round s,
  round CPU s)."""
  cpu_began = common.cpu_seconds()
  began = time.perf_counter()
  population.planner.plan(round_num)
  planned = time.perf_counter()
  ids = [population.client_ids[k] for k in cohort(round_num)]
  plan = round_plan.RoundPlan(
      round_num=round_num, sampled=tuple(ids), step_caps={c: None for c in ids},
      shuffle_seeds={c: seeds.derive(_SEED, purpose='shuffle', round_num=round_num,
                                     client=int(c)) for c in ids},
      update_seeds=round_plan.update_seeds(_SEED, round_num, ids))
  population.state = population.rounds.run(population.state, plan).state
  return planned - began, time.perf_counter() - began, common.cpu_seconds() - cpu_began


def table(populations: Sequence[Population]) -> str:
  """population | preparation | setup | planning | median round wall and CPU, ratios to first."""
  wall = [statistics.median(p.round_s) for p in populations]
  cpu = [statistics.median(p.cpu_s) for p in populations]
  rows = [[f'{p.num_clients:,}', f'{p.prepare_s:.2f}', f'{p.setup_s:.1f}',
           f'{1e3 * statistics.median(p.plan_s):.2f}', f'{w:.3f}',
           f'{min(p.round_s):.3f}-{max(p.round_s):.3f}', f'{w / wall[0]:.3f}', f'{c:.3f}',
           f'{c / cpu[0]:.3f}'] for p, w, c in zip(populations, wall, cpu)]
  return common.format_table(
      ['clients', 'data preparation s', 'process setup s', 'planning ms/round',
       'median round s', 'min-max s', 'ratio to first', 'median CPU s/round',
       'CPU ratio to first'], rows)


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  if not all(p.isdigit() and int(p) >= _COHORT_FROM for p in _POPULATIONS.value):
    raise app.UsageError(f'--populations must be integers >= {_COHORT_FROM}')
  began = time.perf_counter()
  print(common.machine_line(), flush=True)
  log_path = os.path.join(common.ensure_out_dir(), 'population_worker.log')
  with local_worker.local_worker(log_path=log_path):
    build(10)  # Untimed: TF's first dataset and tracing costs go here, not to the first row.
    populations = [build(int(n)) for n in _POPULATIONS.value]
    for p in populations:
      print(f'{p.num_clients:,} clients: prepared in {p.prepare_s:.2f} s, process built in '
            f'{p.setup_s:.1f} s', flush=True)
    for round_num in range(1, _WARMUP_ROUNDS.value + _ROUNDS.value + 1):
      for p in populations:
        plan_s, round_s, cpu_s = run_round(p, round_num)
        if round_num > _WARMUP_ROUNDS.value:
          p.plan_s.append(plan_s)
          p.round_s.append(round_s)
          p.cpu_s.append(cpu_s)
  print(f'\nsynthetic Synthetic(1, 1), seed 0: FedAvg, logistic, {_COHORT_SIZE.value} clients '
        f'per round (the same ones at every population), E=1, B=10, lr 0.1; populations take '
        f'turns each round; median of {_ROUNDS.value} rounds after {_WARMUP_ROUNDS.value} '
        'warm-up')
  print(common.machine_line())
  print(table(populations))
  print(f'total {time.perf_counter() - began:.0f} s')


if __name__ == '__main__':
  app.run(main)
