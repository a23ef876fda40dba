"""Helpers shared by the benchmarks: the McMahan et al. MNIST setting, paths, tables, machine.

Kept free of TensorFlow imports so that `bench.mcmahan`, which only drives subprocesses, starts
fast; the TF-heavy parts live in the benchmark that needs them.
"""

import importlib.metadata
import os
import signal
import subprocess
import time
from typing import Any, Optional, Sequence

from absl import app
import psutil

# After SIGTERM a run finishes its current round (one CNN E=5 round can take minutes) and
# writes its summary; it is killed if it takes longer than this.
TERM_GRACE_S = 600.0

# Repository root (the parent of bench/), where `python -m launch.run_experiment` must run.
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Real MNIST (the four IDX .gz files) in the shared data folder beside the checkout.
MNIST_DIR = os.path.normpath(os.path.join(REPO_ROOT, '..', 'shared', 'data', 'mnist'))
# Benchmark outputs: run directories, subprocess and worker logs (git-ignored).
OUT_DIR = os.path.join(REPO_ROOT, 'bench', 'out')
# launch.run_experiment's default --cache_dir, so benchmarks reuse its per-client files.
CACHE_DIR = os.path.join(os.path.expanduser('~'), '.cache', 'tff_experiments')

# McMahan et al. 2017, MNIST: 100 clients, C=0.1, B=10, client SGD, server averaging (SGD at
# lr 1 on the mean delta). E, the model and the partition vary per experiment. The client
# learning rate is not given per row in the paper; 0.1 is the package's default.
MCMAHAN_MNIST: dict[str, Any] = {
    'dataset': 'mnist',
    'data_dir': MNIST_DIR,
    'num_clients': 100,
    'clients_per_round': 10,
    'client_batch_size': 10,
    'client_learning_rate': 0.1,
    'server_optimizer': 'sgd',
    'server_learning_rate': 1.0,
    'seed': 0,
}


def as_flags(settings: dict[str, Any]) -> list[str]:
  """`{'name': value}` -> `['--name=value']`, the form launch.run_experiment parses."""
  return [f'--{name}={value}' for name, value in settings.items()]


def ensure_out_dir() -> str:
  """Creates bench/out if needed and returns it (logs and run directories go there)."""
  os.makedirs(OUT_DIR, exist_ok=True)
  return OUT_DIR


def machine_line() -> str:
  """CPUs, current load (other jobs skew timings) and library versions, for comparing tables."""
  usable = len(os.sched_getaffinity(0))
  versions = ', '.join(f'{name} {_version(name)}'
                       for name in ('tensorflow', 'tensorflow-federated'))
  load = ' '.join(f'{x:.2f}' for x in os.getloadavg())
  return (f'machine: nproc {usable} (os.cpu_count {os.cpu_count()}), load average {load}; '
          f'{versions}')


def _version(distribution: str) -> str:
  """Installed version of `distribution` without importing it ('?' if not installed)."""
  try:
    return importlib.metadata.version(distribution)
  except importlib.metadata.PackageNotFoundError:
    return '?'


def cpu_seconds() -> float:
  """User + system CPU time so far of this process and its live children (the TFF worker).

  Other jobs on a shared machine stretch wall times; CPU time per round is steadier.
  """
  me = psutil.Process()
  total = 0.0
  for process in [me, *me.children(recursive=True)]:
    try:
      times = process.cpu_times()
    except psutil.NoSuchProcess:
      continue
    total += times.user + times.system
  return total


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
  """A plain-text table with a rule under the header; cells are str()-ed, columns left-aligned."""
  cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
  widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
  lines = [' | '.join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
  lines.insert(1, '-+-'.join('-' * w for w in widths))
  return '\n'.join(lines)


def run_logged(command: Sequence[str], log_path: str, *,
               budget_s: Optional[float] = None) -> tuple[int, float, bool]:
  """Runs `command` in the repo root, output appended to `log_path`, within `budget_s`.

  Returns the exit code, the seconds taken and whether the budget stopped it (a stopped
  `launch.run_experiment` resumes from its checkpoint when run again).
  """
  env = {**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '2', 'PYTHONUNBUFFERED': '1'}
  began = time.monotonic()
  with open(log_path, 'ab') as log:
    process = subprocess.Popen(list(command), cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL,
                               stdout=log, stderr=subprocess.STDOUT)
    stopped = False
    try:
      process.wait(timeout=budget_s or None)
    except subprocess.TimeoutExpired:
      stopped = True
      stop(process)
    except BaseException:  # Ctrl-C: stop the run cleanly (it checkpoints) before leaving.
      stop(process)
      raise
  return process.returncode, time.monotonic() - began, stopped


def stop(process: subprocess.Popen) -> None:
  """SIGTERM (the run writes its summary after the current round), SIGKILL after the grace."""
  if process.poll() is not None:
    return
  process.send_signal(signal.SIGTERM)
  try:
    process.wait(timeout=TERM_GRACE_S)
  except subprocess.TimeoutExpired:
    process.kill()
    process.wait()


def check_choices(flag: str, chosen: Sequence[str], known: Sequence[str]) -> None:
  """UsageError naming `flag` if `chosen` has values outside `known`."""
  unknown = sorted(set(chosen) - set(known))
  if unknown:
    raise app.UsageError(f'unknown {flag} {unknown}; choose from {list(known)}')


def run_cells(cells: Sequence[tuple[str, Sequence[str]]], *, budget_s: float = 0,
              log_dir: Optional[str] = None) -> None:
  """Runs each (run name, command) with its log in `log_dir` (default bench/out/) and prints
  how it ended (a finished run only reads back; a stopped one resumes next time)."""
  log_dir = log_dir or ensure_out_dir()
  for name, command in cells:
    log_path = os.path.join(log_dir, f'{name}.log')
    code, elapsed, stopped = run_logged(command, log_path, budget_s=budget_s)
    print(f'{name}: exit {code} in {elapsed:.0f} s{" (budget)" if stopped else ""}; '
          f'log {log_path}', flush=True)
