"""Nested TFF round metrics -> one flat CSV row with stable, documented columns.

Leading columns, always present and in this order (blank where a round has no value):
  round_num, train/loss, train/accuracy, eval/loss, eval/accuracy, num_examples,
  round_time_s, eval_time_s
then every other measurement of the process, flattened with '/' in the process's own order
(e.g. `train/num_steps`, `finalizer/update_non_finite`, `aggregator/...` for the aggregator
stack's layers), then the other evaluation metrics (`eval/...`, and evaluations with a group
of their own such as `personalization/...`), then the columns of the round
hooks (`plan/...`, later `privacy/...`) and `round_status` (`ok`, `skipped` or `aborted`), so
each component's measurements reach the CSV without code here.
"""

import collections
import csv
import io
import os
from typing import Any, Mapping, Optional

import numpy as np

from tff_experiments.core import files

# Renames of the learning process's flattened metric names to the documented column names.
_RENAMES = {'client_work/train/num_examples': 'num_examples'}
_PREFIX_RENAMES = (('client_work/train/', 'train/'),)
# Groups a component files its measurements under, reported as `<group>/...` wherever the
# component nests in the process (e.g. the quantize layer's `comm` under the clip layer, the
# secure sum's `secagg` under the mean or the DP layer).
HOISTED_GROUPS = ('comm', 'secagg')
LEADING_COLUMNS = ('train/loss', 'train/accuracy', 'eval/loss', 'eval/accuracy', 'num_examples',
                   'round_time_s', 'eval_time_s')
KEY_COLUMN = 'round_num'


def flatten(structure: Any, prefix: str = '') -> collections.OrderedDict:
  """Flattens nested mappings/sequences to {'a/b/c': leaf}; empty containers vanish."""
  flat = collections.OrderedDict()
  if isinstance(structure, Mapping):
    items = structure.items()
  elif isinstance(structure, (list, tuple)) and not hasattr(structure, 'dtype'):
    items = ((str(i), v) for i, v in enumerate(structure))
  else:
    flat[prefix] = structure
    return flat
  for key, value in items:
    flat.update(flatten(value, f'{prefix}/{key}' if prefix else str(key)))
  return flat


def _scalar(value: Any) -> Any:
  """A JSON/CSV-friendly Python scalar (or list) from numpy/TF values."""
  array = np.asarray(value)
  return array.item() if array.ndim == 0 else array.tolist()


def column_name(name: str) -> str:
  """The documented column of a flattened process metric name."""
  if name in _RENAMES:
    return _RENAMES[name]
  parts = name.split('/')
  for index, part in enumerate(parts[:-1]):
    if part in HOISTED_GROUPS:
      return '/'.join(parts[index:])
  for prefix, replacement in _PREFIX_RENAMES:
    if name.startswith(prefix):
      return replacement + name[len(prefix):]
  return name


def row(*, round_metrics: Any, eval_metrics: Optional[Mapping[str, Any]],
        round_time_s: float, eval_time_s: Optional[float]) -> collections.OrderedDict:
  """The CSV row of one round (without the key column, which `MetricsCsv.write` adds).

  `eval_metrics` are all reported, as `eval/<name>`, or as they are when the name has a group
  of its own (`personalization/before_accuracy_mean`).
  """
  measured = collections.OrderedDict(
      (column_name(name), _scalar(value))
      for name, value in flatten(round_metrics or {}).items())
  evaluated = collections.OrderedDict(
      (name if '/' in name else f'eval/{name}', _scalar(value))
      for name, value in (eval_metrics or {}).items())
  values = {**measured, **evaluated, 'round_time_s': round_time_s, 'eval_time_s': eval_time_s}
  out = collections.OrderedDict((name, values.get(name)) for name in LEADING_COLUMNS)
  out.update((name, value) for name, value in measured.items() if name not in out)
  out.update((name, value) for name, value in evaluated.items() if name not in out)
  return out


class MetricsCsvError(ValueError):
  """metrics.csv cannot be read (the message names the file)."""


class MetricsCsv:
  """metrics.csv, one row per round, rewritten atomically on every write.

  Writing round r first drops rows of rounds >= r (rows of rounds redone after resuming from
  an earlier checkpoint), so the file always reads as one consistent run. New columns (a
  component that starts reporting later) are appended to the right. `text()` is what a
  checkpoint keeps, and `restored` rebuilds the file from it.
  """

  def __init__(self, path: str, *, text: Optional[str] = None):
    """Reads `path` (or, if given, `text` instead of the file's content)."""
    self._path = path
    self._columns: list[str] = [KEY_COLUMN]
    self._rows: list[dict[str, str]] = []
    if text is None and os.path.exists(path):
      with open(path, 'rb') as f:
        raw = f.read()
      try:
        text = raw.decode('utf-8')
      except UnicodeDecodeError as e:
        raise MetricsCsvError(f'{path} is not a readable metrics file ({e})') from e
    if text:
      try:
        reader = csv.DictReader(io.StringIO(text))
        columns = list(reader.fieldnames or [KEY_COLUMN])
        rows = list(reader)
        if columns[0] != KEY_COLUMN or any(None in r or None in r.values() for r in rows):
          raise ValueError('malformed header, or a row with more or fewer fields than it')
        [int(r[KEY_COLUMN]) for r in rows]  # pylint: disable=expression-not-assigned
      except (csv.Error, ValueError, TypeError) as e:
        raise MetricsCsvError(f'{path} is not a readable metrics file ({e})') from e
      self._columns, self._rows = columns, rows

  @classmethod
  def restored(cls, path: str, text: str) -> 'MetricsCsv':
    """The file rebuilt from `text` (a checkpoint's copy), written atomically."""
    metrics = cls(path, text=text)
    metrics._flush()  # pylint: disable=protected-access
    return metrics

  def rounds(self) -> list[int]:
    """The rounds with a row, in file order."""
    return [int(r[KEY_COLUMN]) for r in self._rows]

  def text(self) -> str:
    """The file's content."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=self._columns, lineterminator='\n')
    writer.writeheader()
    writer.writerows(self._rows)
    return buffer.getvalue()

  def write(self, round_num: int, values: Mapping[str, Any]) -> None:
    """Records the row of `round_num`, replacing it and any later rows."""
    self._rows = [r for r in self._rows if int(r[KEY_COLUMN]) < round_num]
    self._columns += [k for k in values if k not in self._columns]
    self._rows.append({KEY_COLUMN: str(round_num),
                       **{k: '' if v is None else v for k, v in values.items()}})
    self._flush()

  def _flush(self) -> None:
    files.write_text_atomic(self._path, self.text())
