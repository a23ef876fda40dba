"""sweeps.execute: a point killed by a signal says so in sweep.json, and a full disk stops every
run with one line, leaving the last sweep.json that fitted."""

import errno
import json
import os
import sys

from tff_experiments.core import files
from tff_experiments.sweeps import backends
from tff_experiments.sweeps import execute
from tff_experiments.sweeps import state


def _trivial_sweep(tmp_path, codes):
  """sweep.json of points running `python -c <code>` (name -> code), as run_sweep takes it."""
  points = [state.Point(name=name, values={}, run_dir=str(tmp_path / name),
                        log=str(tmp_path / f'{name}.log'),
                        command=[sys.executable, '-c', code], hparams={})
            for name, code in codes.items()]
  return state.SweepFile(str(tmp_path / 'sweep.json'), header={'sweep_name': 's'},
                         points=points)


def test_a_point_killed_by_a_signal_says_so_not_its_log_header(tmp_path, capsys):
  sweep_file = _trivial_sweep(tmp_path, {
      'killed': 'import os, signal; print("round 1/9"); os.kill(os.getpid(), signal.SIGKILL)'})
  code = execute.run_sweep(sweep_file, backends.BACKENDS.get('local'), parallel=1, threads=1)
  assert code == 1
  point = files.read_json(str(tmp_path / 'sweep.json'))['points'][0]
  assert (point['state'], point['exit_code']) == ('failed', -9)
  assert point['message'] == ("killed by SIGKILL (signal 9), not by the sweep (the kernel's "
                              'out-of-memory killer, or another process); its last output: '
                              'round 1/9')
  printed = capsys.readouterr()
  assert 'FAILED killed (exit -9): killed by SIGKILL (signal 9)' in printed.out
  assert '===' not in printed.out + printed.err


def test_a_full_disk_stops_the_sweep_with_one_line_and_an_intact_sweep_json(
    tmp_path, monkeypatch, capsys):
  sleeper = ('import signal, sys, time\n'
             'signal.signal(signal.SIGTERM, lambda *a: sys.exit(130))\n'
             'time.sleep(60)\n')
  sweep_file = _trivial_sweep(tmp_path, {'quick': 'pass', 'slow': sleeper, 'queued': sleeper})
  fsync, calls = os.fsync, []
  def fsync_until_the_disk_is_full(fd):  # Both starts fit; the quick point's end does not.
    calls.append(fd)
    if len(calls) > 2:
      raise OSError(errno.ENOSPC, 'No space left on device')
    fsync(fd)
  monkeypatch.setattr(os, 'fsync', fsync_until_the_disk_is_full)
  code = execute.run_sweep(sweep_file, backends.BACKENDS.get('local'), parallel=2, threads=1)
  monkeypatch.setattr(os, 'fsync', fsync)
  err = capsys.readouterr().err
  assert code == 1
  assert err == (f'sweep: error: stopped every run: cannot write {tmp_path / "sweep.json"}: the '
                 'disk is full; free space and run the same command again to resume the '
                 'sweep\n')
  saved = json.loads((tmp_path / 'sweep.json').read_text())  # The last write that fitted.
  assert saved['counts'] == {'running': 2, 'pending': 1}
  assert sorted(os.listdir(tmp_path)) == ['quick.log', 'slow.log', 'sweep.json']  # No temp.
  slow = sweep_file.points[1]  # Stopped (SIGTERM) rather than left to sleep; queued not run.
  assert (slow.state, slow.exit_code) == ('interrupted', 130) or slow.exit_code == -15
  assert sweep_file.points[2].state == 'pending'
