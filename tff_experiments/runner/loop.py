"""The round loop, the same for every algorithm: plan, train, evaluate, record, checkpoint.

Each round: the planner's `RoundPlan` (cohort, who reports, step caps, seeds) -> hooks may stop
the run -> `process.next` on the reporting clients' tasks (a plan where nobody reports is
skipped; a round whose measurements say `aborted` keeps the old model) -> evaluation -> one
metrics row plus hook columns -> checkpoint. Resuming is a property of the loop: state and
round come from the latest checkpoint, plans are functions of (seed, round), hooks replay the
rounds already done, and rows after the checkpoint are replaced as their rounds are redone.
"""

import asyncio
import dataclasses
import datetime
import os
import sys
import time
from typing import Any, Callable, Mapping, Optional, Sequence, TextIO

import tensorflow_federated as tff

from tff_experiments.core import files
from tff_experiments.results import metrics_csv
from tff_experiments.results import run_dir
from tff_experiments.results import summary as summary_lib
from tff_experiments.runner import hooks as hooks_lib
from tff_experiments.runner import round_plan

Evaluator = Callable[[tff.learning.models.ModelWeights], Mapping[str, float]]
# Checkpoints kept besides the first (TFF keeps the first for reproducibility).
_CHECKPOINTS_KEPT = 3


@dataclasses.dataclass(frozen=True)
class Schedule:
  """When rounds end, evaluate and checkpoint (from `settings.ScheduleSettings`)."""
  total_rounds: int
  rounds_per_eval: int
  rounds_per_checkpoint: int
  target_accuracy: Optional[float] = None


def _is_due(round_num: int, every: int, total: int) -> bool:
  return round_num % every == 0 or round_num == total


def _aborted(measurements: Any) -> bool:
  """Whether a component reported `.../aborted` true (e.g. too few secure-aggregation survivors)."""
  return any(name.split('/')[-1] == 'aborted' and bool(value)
             for name, value in metrics_csv.flatten(measurements).items())


def _progress_line(round_num: int, total: int, row: Mapping, seconds: Sequence[float]) -> str:
  recent = seconds[-10:]
  per_round = sum(recent) / len(recent)
  eta = datetime.timedelta(seconds=round(per_round * (total - round_num)))
  fmt = lambda name: (f'{row[name]:.4f}' if isinstance(row.get(name), (int, float))
                      else '   -  ')
  status = '' if row['round_status'] == 'ok' else f'  [{row["round_status"]}]'
  return (f'round {round_num:>{len(str(total))}}/{total}  train_loss {fmt("train/loss")}  '
          f'train_acc {fmt("train/accuracy")}  eval_acc {fmt("eval/accuracy")}  '
          f'{per_round:.2f} s/round  ETA {eta}{status}')


def run(schedule: Schedule, *, process: tff.learning.templates.LearningProcess,
        planner: round_plan.RoundPlanner, evaluate: Evaluator, paths: run_dir.RunPaths,
        hooks: Optional[Sequence[hooks_lib.RoundHook]] = None,
        out: Optional[TextIO] = None) -> dict:
  """Runs (or resumes) `process` for `schedule.total_rounds` rounds; returns the summary.

  `process.next` takes the `client_data` tasks of a plan's reporting clients.
  """
  out = out or sys.stdout
  hooks = hooks_lib.default_hooks() if hooks is None else list(hooks)
  loop = asyncio.new_event_loop()
  status, message, summary = 'failed', None, None
  try:
    state_manager = tff.program.FileProgramStateManager(
        paths.checkpoints_dir, keep_total=_CHECKPOINTS_KEPT, keep_first=True)
    csv_file = metrics_csv.MetricsCsv(paths.metrics_csv)
    state = process.initialize()
    saved_state, saved_round = loop.run_until_complete(state_manager.load_latest(state))
    start = 0
    if saved_state is not None:
      state, start = saved_state, saved_round
      print(f'resuming {paths.run_dir} from the checkpoint of round {start}', file=out,
            flush=True)
    for done in range(1, start + 1):
      for hook in hooks:
        hook.replay(planner.plan(done))
    seconds = []
    status = 'completed'
    for round_num in range(start + 1, schedule.total_rounds + 1):
      plan = planner.plan(round_num)
      stop = next(filter(None, (h.before_round(plan) for h in hooks)), None)
      if stop:
        status, message = stop.status, stop.message
        break
      began = time.perf_counter()
      round_status, measurements = 'skipped', None
      if not plan.skipped:
        output = process.next(state, plan.tasks())
        measurements = output.metrics
        round_status = 'aborted' if _aborted(measurements) else 'ok'
        if round_status == 'ok':
          state = output.state
      round_time = time.perf_counter() - began
      eval_metrics, eval_time = None, None
      if _is_due(round_num, schedule.rounds_per_eval, schedule.total_rounds):
        began = time.perf_counter()
        eval_metrics = evaluate(process.get_model_weights(state))
        eval_time = time.perf_counter() - began
      row = metrics_csv.row(round_metrics=measurements, eval_metrics=eval_metrics,
                            round_time_s=round_time, eval_time_s=eval_time)
      for hook in hooks:
        row.update(hook.after_round(plan, row))
      row['round_status'] = round_status
      csv_file.write(round_num, row)
      stop = next(filter(None, (h.stop_after(plan, row) for h in hooks)), None)
      if stop or _is_due(round_num, schedule.rounds_per_checkpoint, schedule.total_rounds):
        loop.run_until_complete(state_manager.save(state, round_num))
      seconds.append(round_time + (eval_time or 0.0))
      print(_progress_line(round_num, schedule.total_rounds, row, seconds), file=out, flush=True)
      if stop:
        status, message = stop.status, stop.message
        print(f'stopped: {stop.message}', file=out, flush=True)
        break
  except KeyboardInterrupt:
    status = 'interrupted'
    raise
  except BaseException:
    status = 'failed'
    raise
  finally:
    loop.close()
    if os.path.exists(paths.metrics_csv):
      summary = summary_lib.summarize(
          paths.metrics_csv, target_accuracy=schedule.target_accuracy, status=status,
          total_rounds=schedule.total_rounds, message=message)
      files.write_json_atomic(paths.summary_json, summary)
  return summary
