"""metrics.csv as far as it can be read, for comparing runs that may be damaged.

`launch.compare` reads runs it did not write: a copy cut short, a disk that filled up, stray
bytes from an editor. Rather than dropping such a file whole (or a whole run) silently, it keeps
every row before the first damaged one and says what it could not read. An intact file reads
exactly as `pandas.read_csv` reads it.
"""

import csv
import io
import os
from typing import Optional

import pandas as pd

from tff_experiments.results import metrics_csv

_EMPTY_COLUMNS = (metrics_csv.KEY_COLUMN,)


def _empty() -> pd.DataFrame:
  return pd.DataFrame({name: pd.Series(dtype=float) for name in _EMPTY_COLUMNS})


def _valid_prefix(text: str) -> tuple[str, int, Optional[str]]:
  """(the header and the rows up to the first malformed one, how many rows, what is wrong
  after them or None). A row is malformed if it has another number of fields than the header,
  no integer round, or no line end (cut short)."""
  lines = text.splitlines(keepends=True)
  header = next(csv.reader(lines[:1]), [])
  if not header or header[0] != metrics_csv.KEY_COLUMN or not lines[0].endswith('\n'):
    return '', 0, f'its header is not a metrics header ({lines[0][:60].strip()!r})'
  for number, line in enumerate(lines[1:], 2):
    fields = next(csv.reader([line]), [])
    problem = None
    if not line.endswith('\n'):
      problem = 'cut short'
    elif len(fields) != len(header):
      problem = f'{len(fields)} fields, the header has {len(header)}'
    elif not fields[0].isdigit():
      problem = f'round {fields[0][:20]!r}'
    if problem:
      return ''.join(lines[:number - 1]), number - 2, f'line {number} is damaged ({problem})'
  return text, len(lines) - 1, None


def read(path: str) -> tuple[pd.DataFrame, Optional[str]]:
  """(the rows of the metrics.csv at `path` up to the first damaged one, what could not be read
  or None). A missing file is no rows and no problem (a run before its first round)."""
  try:
    with open(path, 'rb') as f:
      raw = f.read()
  except FileNotFoundError:
    return _empty(), None
  except OSError as e:
    return _empty(), f'metrics.csv cannot be read ({e.strerror})'
  if not raw:
    return _empty(), 'metrics.csv is empty'
  problems = []
  try:
    text = raw.decode('utf-8')
  except UnicodeDecodeError as e:
    text = raw[:e.start].decode('utf-8')
    text = text[:text.rfind('\n') + 1]  # The lines before the undecodable bytes.
    problems.append(f'bytes that are not UTF-8 at byte {e.start}')
  good, rows, damage = _valid_prefix(text) if text else ('', 0, 'no line before them')
  if damage and not problems:
    problems.append(damage)
  if problems:
    kept = f'{rows} row(s) before them read' if rows else 'no row read'
    return _frame(good), f'metrics.csv: {"; ".join(problems)}; {kept}'
  return _frame(good), None


def _frame(text: str) -> pd.DataFrame:
  """The rows of a valid prefix (header only: no rows), as pandas reads an intact file."""
  if not text:
    return _empty()
  frame = pd.read_csv(io.StringIO(text))
  return frame if len(frame.columns) else _empty()


def missing_rounds(path: str, frame: pd.DataFrame, recorded: Optional[int]) -> Optional[str]:
  """What is missing if summary.json `recorded` more completed rounds than the rows read from
  the metrics.csv at `path` (`frame`) hold."""
  if not recorded:
    return None
  if not os.path.lexists(path):
    return f'metrics.csv is missing (summary.json records {recorded} rounds)'
  read_rounds = int(frame[metrics_csv.KEY_COLUMN].max()) if len(frame) else 0
  if read_rounds < recorded:
    return (f'metrics.csv holds rounds up to {read_rounds} of the {recorded} summary.json '
            'records')
  return None
