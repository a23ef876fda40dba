"""Sweeps in tests: trivial jobs for the backends, `launch.sweep` as a subprocess with failing
points (what processes hold: `process_tree`)."""

import os
import subprocess
import sys
import time

from tff_experiments.core import files
from tff_experiments.sweeps import pool

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Small digits runs (2 rounds, 3 of 10 clients), a few seconds each.
FIXED = ['--dataset=digits', '--total_rounds=2', '--num_clients=10', '--clients_per_round=3']
# A child that exits 130 on SIGTERM as launch.run_experiment does; it records its pid (in the
# file argv[1]) once that holds.
SIGTERM_EXITS_130 = ('import os, signal, sys, time\n'
                     'signal.signal(signal.SIGTERM, lambda *a: sys.exit(130))\n'
                     'open(sys.argv[1], "w").write(str(os.getpid()))\n'
                     'time.sleep(60)\n')


def job(tmp_path, key, code='', env=None, args=(), **fields) -> pool.Job:
  """A job running `python -c code args...`, with its log at `<tmp_path>/<key>.log`."""
  return pool.Job(key=key, command=[sys.executable, '-c', code, *args],
                  log_path=str(tmp_path / f'{key}.log'), env=env or dict(os.environ), **fields)


class Recorder:
  """A pool's callbacks that record the most jobs running at once and each exit's (code,
  seconds)."""

  def __init__(self):
    self.running, self.most, self.exits = set(), 0, {}
    self.callbacks = dict(on_start=self._start, on_exit=self._exit)

  def _start(self, job) -> None:
    self.running.add(job.key)
    self.most = max(self.most, len(self.running))

  def _exit(self, job, code, seconds) -> None:
    self.running.discard(job.key)
    self.exits[job.key] = (code, seconds)

  def codes(self) -> dict:
    return {key: code for key, (code, _) in self.exits.items()}


# A process that records its pid (in the file argv[1]), then ignores SIGTERM for a minute; with
# argv[2] == 'daemon' it first double-forks into a new session, as daemons do (its parent is
# gone: the nearest subreaper, or init, inherits it).
_STUBBORN = ('import os, signal, sys, time\n'
             'if sys.argv[2] == "daemon":\n'
             '  if os.fork(): os._exit(0)\n'
             '  os.setsid()\n'
             '  if os.fork(): os._exit(0)\n'
             'signal.signal(signal.SIGTERM, signal.SIG_IGN)\n'
             'open(sys.argv[1] + ".tmp", "w").write(str(os.getpid()))\n'
             'os.rename(sys.argv[1] + ".tmp", sys.argv[1])\n'
             'time.sleep(60)\n')


def start_stubborn_processes(pid_dir: str) -> list[int]:
  """A service for keeper.Keeper (it runs in the keeper): a child and a daemon that both
  ignore SIGTERM; their pids once both run."""
  files_ = [os.path.join(pid_dir, name) for name in ('child', 'daemon')]
  for path, kind in zip(files_, ('child', 'daemon')):
    subprocess.Popen([sys.executable, '-c', _STUBBORN, path, kind])
  while not all(os.path.exists(path) for path in files_):
    time.sleep(0.05)
  return [int(open(path).read()) for path in files_]


def fail_to_start() -> None:
  """A service for keeper.Keeper that cannot start."""
  raise RuntimeError('no such service\nsecond line')


def failing_cache_dir(tmp_path) -> str:
  """A --cache_dir that passes the sweep's up-front checks but fails its run at start (exit 2):
  its parent `not_a_dir` is a file."""
  blocker = tmp_path / 'not_a_dir'
  blocker.write_text('')
  return str(blocker / 'cache')


def check_failing_sweep_then_rerun(tmp_path, *sweep_flags, env=None) -> tuple[dict, str]:
  """Runs `launch.sweep --root_output_dir=tmp_path --sweep_name=s <sweep_flags> -- FIXED` twice.

  The points whose name holds 'not_a_dir' (see failing_cache_dir) must fail, the others
  complete. Checks: exit 1 with every failed point listed with its log, the others' summaries
  completed after 2 rounds; then the re-run skips the completed points without starting them
  (their metrics.csv untouched) and runs the failed ones again. `env`: more environment
  variables for the sweep. Returns sweep.json after the re-run and both runs' stdout and stderr.
  """
  args = [sys.executable, '-m', 'launch.sweep', f'--root_output_dir={tmp_path}', '--sweep_name=s',
          *sweep_flags, '--', *FIXED]
  env = {**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '2', **(env or {})}
  done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
  assert done.returncode == 1, done.stdout + done.stderr  # Some points failed...
  saved = files.read_json(str(tmp_path / 's' / 'sweep.json'))
  states = {p['name']: (p['state'], p['status']) for p in saved['points']}
  bad = [n for n in states if 'not_a_dir' in n]
  good = [n for n in states if n not in bad]
  assert bad and good
  assert all(states[n] == ('done', 'completed') for n in good)  # ...the others completed.
  assert all(states[n][0] == 'failed' for n in bad)
  for name in bad:
    assert f'failed: {name}' in done.stderr
    assert 'is a file, not a directory' in (tmp_path / 's' / f'{name}.log').read_text()
  for name in good:
    summary = files.read_json(str(tmp_path / 's' / name / 'summary.json'))
    assert summary['status'] == 'completed' and summary['rounds_completed'] == 2
  mtimes = {n: os.path.getmtime(tmp_path / 's' / n / 'metrics.csv') for n in good}

  again = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
  assert again.returncode == 1, again.stdout + again.stderr
  assert f'{len(good)} already done (skipped)' in again.stdout
  saved = files.read_json(str(tmp_path / 's' / 'sweep.json'))
  assert {p['name']: p['state'] for p in saved['points']} == {
      **{n: 'skipped' for n in good}, **{n: 'failed' for n in bad}}
  assert mtimes == {n: os.path.getmtime(tmp_path / 's' / n / 'metrics.csv') for n in good}
  for name in bad:  # Started again: a second header line in its log.
    assert (tmp_path / 's' / f'{name}.log').read_text().count('=== ') == 2
  return saved, done.stdout + done.stderr + again.stdout + again.stderr
