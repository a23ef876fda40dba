r"""Start-up and a whole short run, from the command: this package vs the plain TF loop.

  .venv/bin/python -m bench.startup > /tmp/startup.txt 2>&1

Every command below is timed from launch to exit, `--repeats` times (the table gives medians):

  import                 `python -c "import tensorflow"`, and with tensorflow_federated, until
                         the import is done: the part of start-up no code of ours can shorten.
  tff-experiments        `python -m launch.run_experiment` on the McMahan et al. MNIST 2NN
                         workload (10 of 100 IID clients x 600 per round, E=1, B=10) for
                         `--rounds` rounds, evaluated once at the end, into a fresh results
                         directory (the client-file cache is reused, as in any second run).
                         Its metrics.csv gives each round's and the evaluation's seconds.
  plain TF loop (floor)  `python -m bench.startup --floor`: imports TensorFlow, reads MNIST,
                         splits it into the same 100 IID clients and runs `bench.baselines`'
                         plain loop on 10 seeded clients per round, then evaluates. It borrows
                         this package's MNIST reader and seeded Keras model, whose import pulls
                         in TFF; that import is timed by the floor itself and taken out of its
                         total, so the floor stands for a TensorFlow-only script.

"start-up beyond import" is the time from the command to the start of its first round (when it
printed that round 1 ended, less round 1's own seconds) minus the import of what it needs (TF
and TFF for the package, TF for the floor). A benchmark that prints a table, not a
test: it asserts nothing.
"""

import time

_STARTED = time.monotonic()  # The floor's phases are timed from here.

# pylint: disable=g-import-not-at-top,wrong-import-position
import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # Before TensorFlow is imported.
import tensorflow as tf

_TF_IMPORTED = time.monotonic()

import csv
import json
import re
import statistics
import subprocess
import sys
import tempfile
from typing import Any, Sequence

from absl import app
from absl import flags
import numpy as np

from bench import common
from bench import baselines
from datasets import mnist
from datasets import partitions
from tff_experiments.runtime import local_worker  # pylint: disable=unused-import
# (Importing local_worker replaces TFF's import-time default context, which otherwise fails
# noisily at exit in any process that imports TFF, as the floor does through bench.baselines.)

_IMPORTED = time.monotonic()

_ROUNDS = flags.DEFINE_integer('rounds', 20, 'Rounds of each run.', lower_bound=1)
_REPEATS = flags.DEFINE_integer('repeats', 3, 'Times each command is run.', lower_bound=1)
_FLOOR = flags.DEFINE_bool('floor', False, 'Internal: be the floor script (prints its phases '
                           'as one JSON line).')
_MODEL = 'mnist_2nn'
_CLIENTS_PER_ROUND = common.MCMAHAN_MNIST['clients_per_round']
# launch.run_experiment's progress line after round 1 (the floor prints one too).
_ROUND_1_LINE = re.compile(r'^round +1/')
_IMPORTED_LINE = re.compile(r'^imported$')


def run_floor(rounds: int) -> dict[str, Any]:
  """The floor script's body after its imports: data, `rounds` rounds, evaluation; with the
  seconds of its imports (module level)."""
  tf.config.threading.set_intra_op_parallelism_threads(1)
  tf.config.threading.set_inter_op_parallelism_threads(1)
  arrays = mnist.load_arrays(common.MNIST_DIR)
  parts = partitions.iid(arrays.train_y, num_clients=common.MCMAHAN_MNIST['num_clients'],
                         seed=common.MCMAHAN_MNIST['seed'])
  clients = [baselines.ClientArrays(x=arrays.train_x[p].astype(np.float32) / 255.0,
                                     y=arrays.train_y[p]) for p in parts]
  floor = baselines.PlainLoop(_MODEL, arrays, clients)  # (arrays give the model's shapes)
  # Built before any round: tracing the loop makes Keras build later models in graph mode.
  keras_model = baselines.build_keras(_MODEL, arrays)
  round_seconds = []
  for round_num in range(1, rounds + 1):
    cohort = np.random.default_rng([common.MCMAHAN_MNIST['seed'], round_num]).choice(
        len(clients), _CLIENTS_PER_ROUND, replace=False)
    round_began = time.monotonic()
    floor.run_round(round_num, cohort=cohort)
    round_seconds.append(time.monotonic() - round_began)
    print(f'round {round_num}/{rounds}', flush=True)
  eval_began = time.monotonic()
  keras_model.set_weights(list(floor.weights().trainable))
  logits = keras_model(arrays.test_x.astype(np.float32) / 255.0, training=False)
  accuracy = float(np.mean(np.argmax(logits, axis=1) == arrays.test_y))
  return dict(tf_import_s=_TF_IMPORTED - _STARTED, package_import_s=_IMPORTED - _TF_IMPORTED,
              rounds_s=round_seconds, eval_s=time.monotonic() - eval_began, accuracy=accuracy)


def timed(command: Sequence[str], marker: re.Pattern = _ROUND_1_LINE
           ) -> tuple[float, float, str]:
  """Runs `command` in the repo root: (seconds from launch to exit, seconds from launch until
  it printed a line matching `marker` (by default: round 1 ended), its output). Fails loudly."""
  began = time.monotonic()
  process = subprocess.Popen(list(command), cwd=common.REPO_ROOT, text=True, bufsize=1,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '2',
                                  'PYTHONUNBUFFERED': '1'})
  lines, round_1_ended = [], float('nan')
  for line in process.stdout:
    lines.append(line)
    if marker.match(line) and round_1_ended != round_1_ended:  # The first one (not NaN).
      round_1_ended = time.monotonic() - began
  seconds = time.monotonic() - began
  if process.wait():
    raise RuntimeError(f'{" ".join(command)} exited {process.returncode}:\n'
                       f'{"".join(lines)[-3000:]}')
  return seconds, round_1_ended, ''.join(lines)


def package_run(rounds: int, out_dir: str) -> dict[str, Any]:
  """`launch.run_experiment` on the workload into a fresh directory: its total and phases."""
  settings = {**common.MCMAHAN_MNIST, 'model': _MODEL, 'partition': 'iid',
              'client_epochs_per_round': 1, 'total_rounds': rounds, 'rounds_per_eval': rounds,
              'root_output_dir': out_dir, 'experiment_name': 'bench_startup',
              'cache_dir': common.CACHE_DIR}
  total, round_1_ended, _ = timed([sys.executable, '-m', 'launch.run_experiment',
                                   *common.as_flags(settings)])
  (metrics_path,) = [os.path.join(d, 'metrics.csv') for d, _, files in os.walk(out_dir)
                     if 'metrics.csv' in files]
  with open(metrics_path, newline='') as f:
    rows = list(csv.DictReader(f))
  evaluated = [r for r in rows if r.get('eval_time_s')]
  round_seconds = [float(r['round_time_s']) for r in rows]
  return dict(total_s=total, startup_s=round_1_ended - round_seconds[0], rounds_s=round_seconds,
              eval_s=sum(float(r['eval_time_s']) for r in evaluated),
              accuracy=float(evaluated[-1]['eval/accuracy']))


def floor_run(rounds: int) -> dict[str, Any]:
  """The floor script as a command: its total (without the package import) and phases."""
  total, round_1_ended, stdout = timed([sys.executable, '-m', 'bench.startup', '--floor',
                                        f'--rounds={rounds}'])
  phases = json.loads([line for line in stdout.splitlines() if line.startswith('{')][-1])
  package_import = phases['package_import_s']
  return dict(phases, total_s=total - package_import,
              startup_s=round_1_ended - package_import - phases['rounds_s'][0])


def import_seconds(modules: str) -> float:
  """Seconds from launching `python -c "import <modules>"` until the import is done (not the
  exit, which tears TensorFlow down)."""
  return timed([sys.executable, '-c', f'import {modules}; print("imported", flush=True)'],
               _IMPORTED_LINE)[1]


def _median(runs: Sequence[dict[str, Any]], key) -> float:
  return statistics.median(key(r) for r in runs)


def row(name: str, runs: Sequence[dict[str, Any]], *, imports_s: float,
        floor_total_s: float) -> list[str]:
  """One table row from the runs of one way."""
  total = _median(runs, lambda r: r['total_s'])
  startup = _median(runs, lambda r: r['startup_s'])
  return [name, f'{total:.1f}', f'{total / floor_total_s:.2f}x', f'{imports_s:.1f}',
          f'{startup - imports_s:.1f}', f'{_median(runs, lambda r: r["rounds_s"][0]):.2f}',
          f'{_median(runs, lambda r: sum(r["rounds_s"][1:])):.2f}',
          f'{_median(runs, lambda r: r["eval_s"]):.2f}',
          f'{_median(runs, lambda r: r["accuracy"]):.4f}']


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  rounds = _ROUNDS.value
  if _FLOOR.value:
    print(json.dumps(run_floor(rounds)))
    return
  print(common.machine_line(), flush=True)
  tf_import = [import_seconds('tensorflow') for _ in range(_REPEATS.value)]
  tff_import = [import_seconds('tensorflow, tensorflow_federated')
                for _ in range(_REPEATS.value)]
  package, floor = [], []
  with tempfile.TemporaryDirectory(dir=common.ensure_out_dir()) as out_dir:
    for repeat in range(_REPEATS.value):  # Alternating, so load from other jobs hits both.
      package.append(package_run(rounds, os.path.join(out_dir, str(repeat))))
      floor.append(floor_run(rounds))
      print(f'repeat {repeat + 1}: package {package[-1]["total_s"]:.1f} s, floor '
            f'{floor[-1]["total_s"]:.1f} s', flush=True)
  floor_total = _median(floor, lambda r: r['total_s'])
  print(f'\nMNIST 2NN (10 of 100 IID clients x 600 per round, E=1, B=10), {rounds} rounds and '
        f'one evaluation, from the command; median of {_REPEATS.value}')
  print(common.machine_line())
  print(common.format_table(
      ['way', 'command total s', 'vs floor', 'import s', 'start-up beyond import s',
       'round 1 s', f'rounds 2-{rounds} s', 'eval s', 'test acc'],
      [row('tff-experiments', package, imports_s=statistics.median(tff_import),
           floor_total_s=floor_total),
       row('plain TF loop (floor)', floor, imports_s=statistics.median(tf_import),
           floor_total_s=floor_total)]))
  print(f'import tensorflow: {statistics.median(tf_import):.1f} s; with tensorflow_federated: '
        f'{statistics.median(tff_import):.1f} s; the floor\'s package import (left out): '
        f'{_median(floor, lambda r: r["package_import_s"]):.1f} s')


if __name__ == '__main__':
  app.run(main)
