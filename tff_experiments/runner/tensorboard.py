"""Each round's metrics row as TensorBoard scalars, in `<run_dir>/tensorboard/` (--tensorboard).

`tensorboard --logdir=<root_output_dir>` then shows every run side by side. Every numeric value
of the row (the metrics.csv columns: `train/loss`, `eval/accuracy`, `aggregator/...`,
`plan/...`, privacy columns, ...) becomes a scalar of the same name at step `round_num`; blank
and text cells (`round_status`) are left out.

Why not `tff.program.TensorBoardReleaseManager`: it fits the shape (a flattened structure
released at an integer key, scalars through `tf.summary.scalar`, the same names as here), but it
is asynchronous (one event loop per round from inside the round loop) and exposes no flush or
close, so its events sit in the writer's queue for up to two minutes: a live TensorBoard lags
and a killed run loses them. The hook writes the same summaries with its own `tf.summary` file
writer and flushes after each round instead.

Resuming: a resumed run appends a new event file to the same directory and rewrites the steps
after its checkpoint; TensorBoard shows the latest value written at a step, so curves stay
continuous (nothing is duplicated visibly).
"""

import math
import numbers
import os
from typing import Any, Mapping

import tensorflow as tf

from tff_experiments.runner import hooks

DIRECTORY = 'tensorboard'


def log_dir(run_dir: str) -> str:
  """Where a run's TensorBoard event files go."""
  return os.path.join(run_dir, DIRECTORY)


def scalars(row: Mapping[str, Any]) -> dict[str, float]:
  """The row's numeric values (booleans, blanks and text left out; NaN kept, TensorBoard shows
  it), by column name."""
  return {name: float(value) for name, value in row.items()
          if isinstance(value, numbers.Real) and not isinstance(value, bool)
          and not (isinstance(value, float) and math.isinf(value))}


class TensorBoardHook(hooks.RoundHook):
  """Writes each round's row as scalars at step `round_num` (adds no columns)."""

  def __init__(self, directory: str):
    self._directory = directory
    self._writer = None  # Made on the first round: a run that only resumes to skip makes none.

  def after_round(self, plan, row) -> dict[str, Any]:
    """Writes the row; as the run's last hook (`experiment.HOOKS`) it sees every other hook's
    columns."""
    if self._writer is None:
      os.makedirs(self._directory, exist_ok=True)
      self._writer = tf.summary.create_file_writer(self._directory)
    with self._writer.as_default():
      for name, value in scalars(row).items():
        tf.summary.scalar(name, value, step=plan.round_num)
    self._writer.flush()
    return {}

