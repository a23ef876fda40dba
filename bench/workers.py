r"""Round time of one simulation on its private worker vs on `--workers` (launch.worker services).

  .venv/bin/python -m bench.workers > /tmp/workers.txt 2>&1

The McMahan et al. MNIST 2NN round (10 of 100 IID clients, E=1, B=10) for `--rounds` rounds,
three ways, each a `launch.run_experiment` subprocess with the same flags and seed: the default
private local worker, one `launch.worker` on 127.0.0.1, and two (TFF's mergeable context, 5
clients each). The table gives the median round time (metrics.csv's round_time_s, after the
first round, which compiles) and the final test accuracy (the same for every way: the runs
compute the same thing). On one machine the workers
share its cores, so this measures the cost of the distributed path, not a speed-up.
"""

import os
import statistics
import subprocess
import sys

from absl import app
from absl import flags
import pandas as pd
import portpicker

from bench import common

_ROUNDS = flags.DEFINE_integer('rounds', 12, 'Rounds per way.', lower_bound=2)
_WAYS = ('local worker', '1 remote worker', '2 remote workers')


def _start_workers(count: int) -> list[tuple[subprocess.Popen, int]]:
  services = []
  for _ in range(count):
    port = portpicker.pick_unused_port()
    service = subprocess.Popen([sys.executable, '-m', 'launch.worker', f'--port={port}'],
                               cwd=common.REPO_ROOT, stdout=subprocess.PIPE, text=True,
                               stderr=subprocess.STDOUT)
    for line in service.stdout:
      if line.startswith('TFF worker'):
        break
    services.append((service, port))
  return services


def _run(way: str, index: int) -> list:
  services = _start_workers(index)
  flags_ = {**common.MCMAHAN_MNIST, 'model': 'mnist_2nn', 'client_epochs_per_round': 1,
            'total_rounds': _ROUNDS.value, 'root_output_dir': common.ensure_out_dir(),
            'experiment_name': f'bench_workers_{index}', 'cache_dir': common.CACHE_DIR,
            'overwrite': True, 'tensorboard': False}
  if services:
    flags_['workers'] = ','.join(f'127.0.0.1:{port}' for _, port in services)
  try:
    driver = subprocess.run([sys.executable, '-m', 'launch.run_experiment',
                             *common.as_flags(flags_)], cwd=common.REPO_ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if driver.returncode != 0:
      raise RuntimeError(f'{way}: run failed: {driver.stderr[-500:]}')
  finally:
    for service, _ in services:
      service.terminate()
      service.wait()
  metrics = pd.read_csv(os.path.join(flags_['root_output_dir'], flags_['experiment_name'],
                                     'metrics.csv'))
  rounds = metrics['round_time_s'].iloc[1:]
  return [way, f'{statistics.median(rounds):.3f}', f'{metrics["eval/accuracy"].iloc[-1]:.4f}']


def main(argv) -> None:
  del argv
  print(common.machine_line())
  rows = [_run(way, index) for index, way in enumerate(_WAYS)]
  print(common.format_table(
      ['MNIST 2NN, 10 clients x 600, E=1, B=10', 'median round (s)', 'final accuracy'], rows))


if __name__ == '__main__':
  app.run(main)
