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
import os
from typing import Any, Mapping, Optional, Sequence

from tff_experiments.core import files
from tff_experiments.results import run_dir

FILE_NAME = 'sweep.json'
PENDING, RUNNING, DONE, SKIPPED, FAILED, INTERRUPTED = (
    'pending', 'running', 'done', 'skipped', 'failed', 'interrupted')
STATES = (PENDING, RUNNING, DONE, SKIPPED, FAILED, INTERRUPTED)
_MESSAGE_TAIL_BYTES = 16384


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


def failure_message(log_path: str) -> Optional[str]:
  """The child's own error line from the end of its log (`run_experiment: error: ...`, else
  the last non-empty line), or None."""
  try:
    with open(log_path, 'rb') as f:
      f.seek(max(0, os.path.getsize(log_path) - _MESSAGE_TAIL_BYTES))
      lines = [l.strip() for l in f.read().decode('utf-8', 'replace').splitlines() if l.strip()]
  except OSError:
    return None
  errors = [l for l in lines if l.startswith('run_experiment:') or 'Error' in l.split(':')[0]]
  return (errors or lines or [None])[-1]


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
    files.write_json_atomic(self.path, {
        **self.header,
        'updated': datetime.datetime.now().isoformat(timespec='seconds'),
        'counts': dict(self.counts()),
        'points': [dataclasses.asdict(p) for p in self.points],
    })


def load(path: str) -> Optional[dict[str, Any]]:
  """A sweep.json as written, or None if absent."""
  return files.read_json(path)
