"""sweep.json's failure messages: what a failed point's log and exit code say (never the log's
header line, nor an earlier attempt's error), and the one line on a file the sweep cannot
write."""

import errno

from tff_experiments.sweeps import pool
from tff_experiments.sweeps import state

_COMMAND = ['python', '-m', 'launch.run_experiment', '--seed=0']


def _log(tmp_path, *attempts):
  """A point's log of `attempts` (each a list of output lines after its header)."""
  log = tmp_path / 'point.log'
  log.write_text(''.join(pool.log_header(_COMMAND) + ''.join(f'{l}\n' for l in lines)
                         for lines in attempts))
  return str(log)


def test_the_childs_own_error_line_of_this_attempt(tmp_path):
  log = _log(tmp_path, ['round 1/2', 'run_experiment: error: --cache_dir=/x: not writable',
                        'interrupted', ''])
  assert state.failure_message(log, 1) == 'run_experiment: error: --cache_dir=/x: not writable'
  log = _log(tmp_path, ['round 1/2', 'ValueError: bad'], ['round 1/2', 'round 2/2'])
  assert state.failure_message(log, 1) == 'round 2/2'  # Not the first attempt's error.


def test_a_child_killed_by_a_signal_says_which_never_the_header(tmp_path):
  log = _log(tmp_path, ['run_experiment: error: an earlier attempt'], [])
  assert state.failure_message(log, -9) == (
      "killed by SIGKILL (signal 9), not by the sweep (the kernel's out-of-memory killer, or "
      'another process)')
  log = _log(tmp_path, ['round 3/100'])
  assert state.failure_message(log, -15).startswith(
      'killed by SIGTERM (signal 15), not by the sweep')
  assert state.failure_message(log, -15).endswith('; its last output: round 3/100')


def test_the_sweeps_own_note_says_why_it_killed_a_point(tmp_path):
  log = _log(tmp_path, ['round 1/2'])
  job = pool.Job(key='k', command=_COMMAND, log_path=log, env={})
  pool.add_note(job, 'the sweep killed it')
  assert state.failure_message(log, -9) == 'killed by SIGKILL (signal 9): the sweep killed it'


def test_no_output_and_no_log(tmp_path):
  assert state.failure_message(_log(tmp_path, []), 2) == 'exit code 2 without any output'
  missing = str(tmp_path / 'missing.log')
  assert state.failure_message(missing, 1) == f'exit code 1; its log {missing} cannot be read'


def test_a_file_the_sweep_cannot_write_is_one_line_with_what_to_do():
  full = OSError(errno.ENOSPC, 'No space left on device')
  assert state.write_error('/r/s/sweep.json', full) == (
      'cannot write /r/s/sweep.json: the disk is full; free space and run the same command '
      'again to resume the sweep')
  denied = OSError(errno.EACCES, 'Permission denied')
  assert state.write_error('/r/s/x.log', denied).startswith(
      'cannot write /r/s/x.log: Permission denied; ')
