"""A finished run found again: its metrics.csv checked against its summary, and restored from
its final checkpoint (which holds every row) when it was deleted, truncated or garbled.

A run that is over always checkpoints its last round (the loop saves one when it stops), so
rows 1..`rounds_completed` can be rewritten exactly as they were. Nothing is touched when the
file is intact, or when no checkpoint holds those rows (then the caller refuses with the line).
"""

from typing import Optional

from tff_experiments.core import files
from tff_experiments.results import metrics_csv
from tff_experiments.results import run_dir
from tff_experiments.runner import checkpoints


def _damage(path: str, rounds_completed: Optional[int]) -> Optional[str]:
  """How metrics.csv fails to hold rows 1..rounds_completed as this package writes them, or
  None if it holds them intact."""
  try:
    with open(path, 'rb') as f:
      raw = f.read()
  except FileNotFoundError:
    return 'is missing'
  try:
    text = raw.decode('utf-8')
    parsed = metrics_csv.MetricsCsv(path, text=text)
  except (UnicodeDecodeError, metrics_csv.MetricsCsvError):
    return 'is not readable as CSV'
  if parsed.text() != text:  # E.g. a last row cut off mid-value: it would parse.
    return 'is cut off or altered'
  rounds = parsed.rounds()
  if rounds_completed is None:
    return 'cannot be checked (summary.json lacks rounds_completed)'
  if rounds != list(range(1, rounds_completed + 1)):
    held = f'rounds {rounds[0]}-{rounds[-1]} ({len(rounds)} rows)' if rounds else 'no rows'
    return f'holds {held}, not rounds 1-{rounds_completed}'
  return None


def restore_metrics(paths: run_dir.RunPaths) -> Optional[str]:
  """Checks a finished run's metrics.csv; returns None if intact, else restores it atomically
  from the final checkpoint and returns the line saying so.

  Raises:
    run_dir.RunDirError: it is damaged and no checkpoint holds rows 1..rounds_completed
      (nothing is changed).
  """
  summary = files.read_json(paths.summary_json) or {}
  expected = summary.get('rounds_completed')
  damage = _damage(paths.metrics_csv, expected)
  if damage is None:
    return None
  if expected == 0:  # It ended before its first round: the header is all there is.
    metrics_csv.MetricsCsv.restored(paths.metrics_csv, '')
    return f'restored {paths.metrics_csv} (it {damage}): the run has no rounds'
  round_num, rows = checkpoints.newest_rows(paths.checkpoints_dir)
  last = expected if expected is not None else round_num
  try:
    saved = metrics_csv.MetricsCsv(paths.metrics_csv, text=rows).rounds() if rows else None
  except metrics_csv.MetricsCsvError:
    saved = None
  if not last or saved != list(range(1, last + 1)):
    found = ('there is no checkpoint' if round_num is None else
             f'its newest checkpoint (round {round_num}) holds '
             + ('no readable rows' if saved is None else f'{len(saved)} row(s)'))
    raise run_dir.RunDirError(
        f'{paths.metrics_csv} of this finished run {damage} and cannot be restored: {found}, '
        f'not {f"rounds 1-{last}" if last else "its rows"}. It is left as it is; pass '
        '--overwrite to run the experiment again')
  metrics_csv.MetricsCsv.restored(paths.metrics_csv, rows)
  return (f'restored {paths.metrics_csv} (it {damage}): rounds 1-{last} from the checkpoint '
          f'of round {round_num}')
