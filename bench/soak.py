r"""Memory over a long run: resident memory of the driver plus its TFF worker, round by round.

  .venv/bin/python -m bench.soak > /tmp/soak.txt 2>&1

Runs the McMahan et al. MNIST 2NN workload (10 of 100 IID clients x 600, E=1, B=10) for
`--soak_rounds` rounds through `launch.run_experiment`, sampling the resident set size (RSS) of the
driver and its worker every `--sample_s`, and the plain TensorFlow loop of `bench.baselines`
(the floor: the same SGD steps in one process, no TFF) for `--floor_rounds` rounds. The table
gives the package's RSS at round 100 and at the last round (growth between them: a leak shows
here), its peak, and the floor process's peak; a benchmark that prints a table, not a test.
"""

import os

os.environ['TF_CPP_MIN_LOG_LEVEL'] = '2'  # Before TensorFlow is imported.

# pylint: disable=g-import-not-at-top,wrong-import-position
import re
import resource
import subprocess
import sys
import time

from absl import app
from absl import flags
import psutil
import tensorflow as tf

from bench import baselines
from bench import common
from bench import round_time
from tff_experiments import experiment

_ROUNDS = flags.DEFINE_integer('soak_rounds', 1000, 'Rounds of the package run.',
                              lower_bound=100)
_FLOOR_ROUNDS = flags.DEFINE_integer('floor_rounds', 30, 'Rounds of the floor loop.',
                                     lower_bound=1)
_SAMPLE_S = flags.DEFINE_float('sample_s', 0.25, 'Seconds between RSS samples.')
_FLOOR_ONLY = flags.DEFINE_bool('floor_only', False, 'Internal: run only the floor loop (in '
                                'the fresh process whose peak RSS is measured).')
_MIB = 1024 * 1024
_ROUND_LINE = re.compile(r'^round +(\d+)/')


def _rss(process: psutil.Process) -> int:
  """Bytes resident in `process` and all its children (the TFF worker)."""
  total = 0
  for p in [process, *process.children(recursive=True)]:
    try:
      total += p.memory_info().rss
    except psutil.NoSuchProcess:
      pass
  return total


def package_rss() -> dict[int, int]:
  """RSS (bytes) of driver + worker when each round's progress line appeared, and the peak (key
  0), over a `--soak_rounds` run of the 2NN workload."""
  flags_ = {**common.MCMAHAN_MNIST, 'model': 'mnist_2nn', 'client_epochs_per_round': 1,
            'total_rounds': _ROUNDS.value, 'rounds_per_eval': 50, 'rounds_per_checkpoint': 100,
            'root_output_dir': common.ensure_out_dir(), 'experiment_name': 'bench_soak',
            'cache_dir': common.CACHE_DIR, 'overwrite': True, 'tensorboard': False}
  driver = subprocess.Popen([sys.executable, '-m', 'launch.run_experiment',
                             *common.as_flags(flags_)], cwd=common.REPO_ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=1,
                            env={**os.environ, 'PYTHONUNBUFFERED': '1'})
  process = psutil.Process(driver.pid)
  by_round, peak, last_sample = {}, 0, 0.0
  for line in driver.stdout:
    now = time.monotonic()
    match = _ROUND_LINE.match(line)
    if match or now - last_sample > _SAMPLE_S.value:
      rss, last_sample = _rss(process), now
      peak = max(peak, rss)
      if match:
        by_round[int(match.group(1))] = rss
  if driver.wait() != 0:
    raise RuntimeError(f'the soak run failed (exit {driver.returncode}); see its run directory')
  by_round[0] = peak
  return by_round


def run_floor(rounds: int) -> None:
  """`bench.baselines`' plain TF loop on the same workload and cohort, on one TF thread."""
  tf.config.threading.set_intra_op_parallelism_threads(1)
  tf.config.threading.set_inter_op_parallelism_threads(1)
  settings = round_time.Settings(ways=('floor',), rounds=rounds, warmup_rounds=0,
                                 slow_round_s=0, min_rounds=1, timed_budget_s=0, cohort_size=10)
  config = round_time.experiment_config('mnist_2nn', settings)
  data = experiment.load_data(config)
  cohort = sorted(data.train.client_ids)[:settings.cohort_size]
  floor = baselines.PlainLoop('mnist_2nn', data, baselines.read_clients(data.train, cohort))
  for round_num in range(1, rounds + 1):
    floor.run_round(round_num)


def floor_peak_rss() -> int:
  """Peak RSS (bytes) of a fresh process running the floor loop for `--floor_rounds`."""
  subprocess.run([sys.executable, '-m', 'bench.soak', '--floor_only',
                  f'--floor_rounds={_FLOOR_ROUNDS.value}'], cwd=common.REPO_ROOT, check=True)
  return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024


def main(argv) -> None:
  del argv
  if _FLOOR_ONLY.value:
    run_floor(_FLOOR_ROUNDS.value)
    return
  print(common.machine_line())
  floor = floor_peak_rss()
  rss = package_rss()
  last = max(r for r in rss if r)
  rows = [['driver + TFF worker', f'{rss[100] / _MIB:.0f}', f'{rss[last] / _MIB:.0f}',
           f'{100 * (rss[last] / rss[100] - 1):+.1f}%', f'{rss[0] / _MIB:.0f}',
           f'{rss[0] / floor:.2f}x'],
          ['plain TF loop (floor)', '-', '-', '-', f'{floor / _MIB:.0f}', '1.00x']]
  print(common.format_table(
      ['MNIST 2NN, 10 clients x 600, E=1, B=10', 'RSS round 100 (MiB)',
       f'RSS round {last} (MiB)', 'growth', 'peak (MiB)', 'peak vs floor'], rows))


if __name__ == '__main__':
  app.run(main)
