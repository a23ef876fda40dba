"""summary.json of a run, computed from its metrics.csv (so resumed runs summarize every round)."""

import csv
import math
import os
from typing import Any, Optional, Sequence


def rounds_to_target(rounds: Sequence[float], accuracies: Sequence[float],
                     target: float) -> Optional[float]:
  """First round reaching `target`, as in McMahan et al. 2017.

  The accuracy curve is made monotone (best so far) and the crossing is linearly interpolated
  between the last evaluated round below the target and the first at or above it. None when
  the target is never reached.
  """
  best, prev_round, prev_best = -math.inf, None, None
  for r, acc in zip(rounds, accuracies):
    if acc is None or math.isnan(acc):
      continue
    best = max(best, acc)
    if best >= target:
      if prev_round is None or prev_best is None:
        return float(r)
      return float(prev_round + (target - prev_best) / (best - prev_best) * (r - prev_round))
    prev_round, prev_best = r, best
  return None


def _float_or_none(text: str) -> Optional[float]:
  return float(text) if text not in ('', None) else None


# summary.json totals: name -> the per-round column it adds up (present when the column is).
_TOTALS = {'total_uplink_bits': 'comm/uplink_bits_round',
           'total_downlink_bits': 'comm/downlink_bits_round'}


def _totals(rows: list) -> dict[str, float]:
  return {name: sum(_float_or_none(r.get(column, '')) or 0.0 for r in rows)
          for name, column in _TOTALS.items() if rows and column in rows[0]}


def summarize(metrics_csv: str, *, target_accuracy: Optional[float], status: str,
              total_rounds: int, message: Optional[str] = None) -> dict[str, Any]:
  """The summary of a run from its metrics.csv (so resumed runs summarize all their rounds).

  `status` is completed, failed, interrupted or diverged; `message` says why a run ended early.
  `final_accuracy` is the last evaluation's, None when it was of a non-finite model (accuracy
  NaN); `best_accuracy` and `rounds_to_target` consider finite evaluations only.
  """
  if os.path.exists(metrics_csv):
    with open(metrics_csv, newline='') as f:
      rows = list(csv.DictReader(f))
  else:  # Ended before its first row (e.g. interrupted while its computations were built).
    rows = []
  rounds = [int(r['round_num']) for r in rows]
  evals = [(int(r['round_num']), _float_or_none(r.get('eval/accuracy', '')))
           for r in rows]
  evals = [(r, a) for r, a in evals if a is not None]
  # An evaluation of a non-finite model has accuracy NaN: it is never a final or best value.
  finite = [(r, a) for r, a in evals if math.isfinite(a)]
  wall = sum((_float_or_none(r.get('round_time_s', '')) or 0.0)
             + (_float_or_none(r.get('eval_time_s', '')) or 0.0) for r in rows)
  return {
      'status': status,
      'rounds_completed': max(rounds) if rounds else 0,
      'total_rounds': total_rounds,
      'final_accuracy': evals[-1][1] if evals and math.isfinite(evals[-1][1]) else None,
      'best_accuracy': max(a for _, a in finite) if finite else None,
      'target_accuracy': target_accuracy,
      'rounds_to_target': (rounds_to_target([r for r, _ in finite], [a for _, a in finite],
                                            target_accuracy)
                           if target_accuracy is not None else None),
      **_totals(rows),
      'rounds_skipped': sum(r.get('round_status') == 'skipped' for r in rows),
      'rounds_aborted': sum(r.get('round_status') == 'aborted' for r in rows),
      'wall_time_s': round(wall, 3),
      **({'message': message} if message else {}),
  }
