"""sweep.json: a sweep's points, their commands and states, rewritten atomically on each change.

A point's `state` is the sweep's view of it:
  pending      not started yet in this invocation
  running      its `launch.run_experiment` child is going
  done         the run is over (`status` is its summary.json status: completed, diverged,
               target_reached, budget_exhausted; a diverged run is a result, not a failure)
  skipped      it was already over before this invocation (nothing was started)
  failed       the child exited without a finished run (see `message` and its `log`)
  interrupted  the sweep was stopped; the same command resumes it from its checkpoint
"""

import collections
import dataclasses
import datetime
import errno
import os
import signal
from typing import Any, Mapping, Optional, Sequence

from tff_experiments.core import files
from tff_experiments.results import run_dir
from tff_experiments.sweeps import pool

FILE_NAME = 'sweep.json'
PENDING, RUNNING, DONE, SKIPPED, FAILED, INTERRUPTED = (
    'pending', 'running', 'done', 'skipped', 'failed', 'interrupted')
STATES = (PENDING, RUNNING, DONE, SKIPPED, FAILED, INTERRUPTED)
_MESSAGE_TAIL_BYTES = 16384
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


@dataclasses.dataclass
class Point:
  """One run of the sweep and what became of it."""
  name: str
  values: dict[str, Any]   # The grid values of this point, as given (flag -> value).
  run_dir: str
  log: str                 # The child's stdout and stderr (appended on each attempt).
  command: list[str]
  hparams: dict[str, Any]  # Its active settings, as its hparams.json records them.
  state: str = PENDING
  status: Optional[str] = None      # The run's summary.json status, once there is one.
  exit_code: Optional[int] = None
  seconds: Optional[float] = None   # Wall time of this invocation's attempt.
  message: Optional[str] = None


def outcome(exit_code: int, summary: Optional[Mapping[str, Any]]) -> tuple[str, Optional[str]]:
  """(state, run status) of a point whose child exited with `exit_code` (summary: its
  summary.json, if any). A finished run is `done` whatever the exit code (diverged and
  target_reached exit 1); 130 or status interrupted is `interrupted`; anything else `failed`."""
  status = (summary or {}).get('status')
  if status in run_dir.FINAL_STATUSES:
    return DONE, status
  if exit_code == 130 or status == 'interrupted':
    return INTERRUPTED, status
  return FAILED, status


def killed_by(exit_code: int) -> Optional[str]:
  """'killed by SIGKILL (signal 9)' for a negative exit code (subprocess's signal number), else
  None."""
  if exit_code >= 0:
    return None
  try:
    name = signal.Signals(-exit_code).name
  except ValueError:
    name = 'an unknown signal'
  return f'killed by {name} (signal {-exit_code})'


def _last_attempt(log_path: str) -> Optional[list[str]]:
  """The non-empty lines after the log's last header (its tail only), or None if unreadable."""
  try:
    with open(log_path, 'rb') as f:
      f.seek(max(0, os.path.getsize(log_path) - _MESSAGE_TAIL_BYTES))
      lines = [l.strip() for l in f.read().decode('utf-8', 'replace').splitlines() if l.strip()]
  except OSError:
    return None
  headers = [i for i, line in enumerate(lines) if line.startswith(pool.HEADER_PREFIX)]
  return lines[headers[-1] + 1:] if headers else lines


def failure_message(log_path: str, exit_code: int) -> str:
  """Why a point's child failed, from its exit code and this attempt's part of its log (never
  the header): what killed it if a signal did, with the sweep's note if the sweep did it; else
  the child's own error line (`run_experiment: error: ...`, an `...Error: ...` line), else its
  last line."""
  lines = _last_attempt(log_path)
  if lines is None:
    return f'exit code {exit_code}; its log {log_path} cannot be read'
  notes = [l[len(pool.NOTE_PREFIX):] for l in lines if l.startswith(pool.NOTE_PREFIX)]
  errors = [l for l in lines if l.startswith('run_experiment:') or 'Error' in l.split(':')[0]]
  killed = killed_by(exit_code)
  if killed and notes:
    return f'{killed}: {notes[-1]}'
  if killed:
    last = f'; its last output: {lines[-1]}' if lines else ''
    return (f'{killed}, not by the sweep (the kernel\'s out-of-memory killer, or another '
            f'process){last}')
  if errors or notes or lines:
    return (errors or notes or lines)[-1]
  return f'exit code {exit_code} without any output'


def write_error(path: str, error: OSError) -> str:
  """One line on a file the sweep cannot write: which, why ('the disk is full'), what to do."""
  if error.errno in DISK_FULL_ERRNOS:
    return (f'cannot write {path}: the disk is full; free space and run the same command again '
            'to resume the sweep')
  return (f'cannot write {path}: {error.strerror or error}; run the same command again to '
          'resume the sweep once it can be written')


class SweepFileError(RuntimeError):
  """A file of the sweep (sweep.json, a point's log) cannot be written (a one-line message)."""


class SweepFile:
  """sweep.json of one invocation: header fields plus the points, written on every update."""

  def __init__(self, path: str, *, header: Mapping[str, Any], points: Sequence[Point]):
    self.path = path
    self.header = dict(header)
    self.points = list(points)
    self.write()

  def update(self, point: Point, **changes: Any) -> None:
    """Changes fields of `point` (one of `self.points`) and rewrites the file."""
    for name, value in changes.items():
      if name == 'state' and value not in STATES:
        raise ValueError(f'unknown point state {value!r}')
      setattr(point, name, value)
    self.write()

  def counts(self) -> collections.Counter:
    """Points per state."""
    return collections.Counter(p.state for p in self.points)

  def write(self) -> None:
    """Rewrites the file atomically (a failed write leaves the previous one); SweepFileError
    (one line) if it cannot be written."""
    try:
      files.write_json_atomic(self.path, {
          **self.header,
          'updated': datetime.datetime.now().isoformat(timespec='seconds'),
          'counts': dict(self.counts()),
          'points': [dataclasses.asdict(p) for p in self.points],
      })
    except OSError as e:
      raise SweepFileError(write_error(self.path, e)) from e


def load(path: str) -> Optional[dict[str, Any]]:
  """A sweep.json as written, or None if absent."""
  return files.read_json(path)
