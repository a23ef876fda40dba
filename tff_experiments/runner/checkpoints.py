"""Checkpoints of a run: the process state plus the metrics rows so far, safe to resume from.

Each checkpoint is a `tff.program.FileProgramStateManager` version holding
`{'process': state, 'metrics_csv': text}`, so a truncated or deleted metrics.csv is rebuilt
from the checkpoint it resumes from. A damaged latest checkpoint is moved aside (to
`<dir>.damaged`) and the newest intact one is used, saying so; half-written `*_temp*`
directories left by a crash or a full disk are removed.
"""

import asyncio
import dataclasses
import os
import re
import shutil
from typing import Any, Callable, Optional

import tensorflow as tf
import tensorflow_federated as tff

# Checkpoints kept besides the first (TFF keeps the first for reproducibility).
_KEPT = 3
_PREFIX = 'program_state_'  # TFF's default: older runs resume too.


class CheckpointError(RuntimeError):
  """No usable checkpoint although some exist (the message names the directories)."""


@dataclasses.dataclass(frozen=True)
class Restored:
  """What a resume starts from."""
  state: Any
  round_num: int
  metrics_csv: Optional[str]  # None for checkpoints written before the history was kept.


class Checkpoints:
  """Saves and restores a run's checkpoints in `directory`."""

  def __init__(self, directory: str, *, say: Callable[[str], None]):
    self._directory = directory
    self._say = say
    self._manager = tff.program.FileProgramStateManager(
        directory, prefix=_PREFIX, keep_total=_KEPT, keep_first=True)
    self._loop = asyncio.new_event_loop()

  def close(self) -> None:
    self._loop.close()

  def remove_temporaries(self) -> None:
    """Deletes half-written checkpoint directories (TFF writes `<version>_temp<N>` first)."""
    if not os.path.isdir(self._directory):
      return
    for entry in os.listdir(self._directory):
      if '_temp' in entry:
        shutil.rmtree(os.path.join(self._directory, entry), ignore_errors=True)

  def save(self, state: Any, round_num: int, metrics_csv: str) -> None:
    self._loop.run_until_complete(
        self._manager.save({'process': state, 'metrics_csv': metrics_csv}, round_num))

  def restore(self, initial_state: Any) -> Optional[Restored]:
    """The newest intact checkpoint, or None if there is none; damaged ones are set aside."""
    versions = self._loop.run_until_complete(self._manager.get_versions()) or []
    damaged = []
    for version in reversed(versions):
      try:
        restored = self._load(version, initial_state)
      except Exception as e:  # pylint: disable=broad-except  # Any read error = damaged.
        path = os.path.join(self._directory, f'{_PREFIX}{version}')
        aside = f'{path}.damaged'
        shutil.rmtree(aside, ignore_errors=True)
        os.replace(path, aside)
        damaged.append(f'{aside} ({type(e).__name__})')
        continue
      if damaged:
        self._say(f'warning: damaged checkpoint(s) moved aside: {", ".join(damaged)}; '
                  f'resuming from the intact checkpoint of round {version}')
      return restored
    if damaged:
      raise CheckpointError(f'every checkpoint is damaged: {", ".join(damaged)}; delete the run '
                            'directory (or pass --overwrite) to start again')
    return None

  def _load(self, version: int, initial_state: Any) -> Restored:
    loaded = self._loop.run_until_complete(self._manager.load(
        version, {'process': initial_state, 'metrics_csv': ''}))
    if isinstance(loaded, dict) and set(loaded) == {'process', 'metrics_csv'}:
      text = loaded['metrics_csv']
      text = text.decode('utf-8') if isinstance(text, bytes) else str(text)
      return Restored(state=loaded['process'], round_num=version, metrics_csv=text)
    return Restored(state=loaded, round_num=version, metrics_csv=None)  # Older runs.


def newest_rows(directory: str) -> tuple[Optional[int], Optional[str]]:
  """(round, metrics rows) kept by the newest checkpoint in `directory`, read without the
  process state's structure (no model is built) and without writing anything.

  The round is None if there is no checkpoint; the rows are None if the newest one is
  unreadable or holds none (written before checkpoints kept them).
  """
  try:
    entries = os.listdir(directory)
  except FileNotFoundError:
    return None, None
  versions = [int(m.group(1)) for e in entries if (m := re.fullmatch(rf'{_PREFIX}(\d+)', e))]
  if not versions:
    return None, None
  newest = max(versions)
  try:  # What `tff.program.FileProgramStateManager.load` reads, before it restores classes.
    saved = tf.saved_model.load(os.path.join(directory, f'{_PREFIX}{newest}'))()
    rows = saved['metrics_csv'].numpy().decode('utf-8')
  except Exception:  # pylint: disable=broad-except  # Unreadable or of another layout alike.
    return newest, None
  return newest, rows
