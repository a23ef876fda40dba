"""The round loop, the same for every algorithm: plan, train, evaluate, record, checkpoint.

Each round: the planner's `RoundPlan` (cohort, who reports, step caps, seeds) -> hooks may stop
the run -> the round runner runs the plan (`round_runner.RoundRunner.run`), within a deadline
(a plan where nobody reports is skipped; a round whose measurements say `aborted` keeps the old
model) ->
evaluation -> one metrics row plus hook columns -> checkpoint (state and the rows so far).
Resuming is a property of the loop: state, round and metrics rows come from the newest intact
checkpoint, plans are functions of (seed, round), hooks replay the rounds already done, and
rows after the checkpoint are redone. A run that is over has a checkpoint of its last round
(also when a hook stops it before a round), so a finished run's rows can be restored from it
(`finished_run`).
"""

import contextlib
import dataclasses
import datetime
import sys
import time
from typing import Any, Callable, ContextManager, Mapping, Optional, Sequence, TextIO

import tensorflow_federated as tff

from tff_experiments.core import files
from tff_experiments.results import metrics_csv
from tff_experiments.results import run_dir
from tff_experiments.results import summary as summary_lib
from tff_experiments.runner import checkpoints
from tff_experiments.runner import hooks as hooks_lib
from tff_experiments.runner import round_plan
from tff_experiments.runner import round_runner

Evaluator = Callable[[tff.learning.models.ModelWeights], Mapping[str, float]]
# Automatic round deadline: at least this, else 20x the slowest round so far.
_MIN_AUTO_TIMEOUT_S = 600.0


@dataclasses.dataclass(frozen=True)
class Schedule:
  """When rounds end, evaluate and checkpoint (from `sections.ScheduleSettings`)."""
  total_rounds: int
  rounds_per_eval: int
  rounds_per_checkpoint: int
  target_accuracy: Optional[float] = None
  worker_timeout_s: Optional[float] = None


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


def _round_timeout(schedule: Schedule, seconds: Sequence[float]) -> float:
  """The deadline of the next round: --worker_timeout_s, or 20x the slowest round (>= 600 s)."""
  if schedule.worker_timeout_s is not None:
    return schedule.worker_timeout_s
  return max(_MIN_AUTO_TIMEOUT_S, 20 * max(seconds, default=0.0))


def _resume(checkpoints_: checkpoints.Checkpoints, initial_state, paths: run_dir.RunPaths,
            say: Callable[[str], None]):
  """(state, start round, metrics file) from the newest intact checkpoint, or a fresh start.

  The checkpoint's copy of the metrics rows is authoritative: a truncated, emptied, deleted
  or unparseable metrics.csv is rebuilt from it (and said so); rows after it are redone.
  """
  restored = checkpoints_.restore(initial_state)
  if restored is None:
    return initial_state, 0, metrics_csv.MetricsCsv.restored(paths.metrics_csv, '')
  say(f'resuming {paths.run_dir} from the checkpoint of round {restored.round_num}')
  expected = list(range(1, restored.round_num + 1))
  if restored.metrics_csv is None:  # A checkpoint of an older version: the file must do.
    csv_file = metrics_csv.MetricsCsv(paths.metrics_csv)
    if [r for r in csv_file.rounds() if r <= restored.round_num] != expected:
      raise metrics_csv.MetricsCsvError(
          f'{paths.metrics_csv} lacks rows of rounds 1-{restored.round_num} and its checkpoint '
          'holds no copy; pass --overwrite to start the run again')
    return restored.state, restored.round_num, csv_file
  try:
    on_disk = metrics_csv.MetricsCsv(paths.metrics_csv).text()
  except metrics_csv.MetricsCsvError:
    on_disk = None
  csv_file = metrics_csv.MetricsCsv.restored(paths.metrics_csv, restored.metrics_csv)
  if csv_file.rounds() != expected:
    raise metrics_csv.MetricsCsvError(
        f'the checkpoint of round {restored.round_num} holds rows {csv_file.rounds()}')
  if on_disk is not None and not on_disk.startswith(restored.metrics_csv.rstrip('\n')):
    say(f'warning: {paths.metrics_csv} was damaged or incomplete; rebuilt rounds '
        f'1-{restored.round_num} from the checkpoint')
  elif on_disk is None:
    say(f'warning: {paths.metrics_csv} was unreadable or missing; rebuilt rounds '
        f'1-{restored.round_num} from the checkpoint')
  return restored.state, restored.round_num, csv_file


def run(schedule: Schedule, *, rounds: round_runner.RoundRunner,
        planner: round_plan.RoundPlanner, evaluate: Evaluator, paths: run_dir.RunPaths,
        hooks: Optional[Sequence[hooks_lib.RoundHook]] = None,
        guard: Optional[Callable[[float], ContextManager]] = None,
        out: Optional[TextIO] = None) -> dict:
  """Runs (or resumes) `rounds` for `schedule.total_rounds` rounds; returns the summary.

  `guard(s)` bounds each round (the runtime's watchdog deadline). The summary is written whatever
  happens; an exception leaves status `failed` (or `interrupted`) and the message.
  """
  out = out or sys.stdout
  say = lambda text: print(text, file=out, flush=True)
  hooks = hooks_lib.default_hooks() if hooks is None else list(hooks)
  guard = guard or (lambda seconds: contextlib.nullcontext())
  saved = checkpoints.Checkpoints(paths.checkpoints_dir, say=say)
  status, message, summary = 'failed', None, None
  try:
    saved.remove_temporaries()
    state, start, csv_file = _resume(saved, rounds.initialize(), paths, say)
    for done in range(1, start + 1):
      for hook in hooks:
        hook.replay(planner.plan(done))
    seconds = []
    status, saved_round = 'completed', start
    for round_num in range(start + 1, schedule.total_rounds + 1):
      plan = planner.plan(round_num)
      stop = next(filter(None, (h.before_round(plan) for h in hooks)), None)
      if stop:
        status, message = stop.status, stop.message
        if round_num - 1 > saved_round:  # A finished run's last checkpoint holds every row.
          saved.save(state, round_num - 1, csv_file.text())
        break
      began = time.perf_counter()
      round_status, measurements = 'skipped', None
      if not plan.skipped:
        with guard(_round_timeout(schedule, seconds)):
          output = rounds.run(state, plan)
        measurements = output.metrics
        round_status = 'aborted' if _aborted(measurements) else 'ok'
        if round_status == 'ok':
          state = output.state
      round_time = time.perf_counter() - began
      eval_metrics, eval_time = None, None
      if _is_due(round_num, schedule.rounds_per_eval, schedule.total_rounds):
        began = time.perf_counter()
        with guard(_round_timeout(schedule, seconds)):  # A TFF computation: on the worker.
          weights = rounds.get_model_weights(state)
        eval_metrics = evaluate(weights)
        eval_time = time.perf_counter() - began
      row = metrics_csv.row(round_metrics=measurements, eval_metrics=eval_metrics,
                            round_time_s=round_time, eval_time_s=eval_time)
      for hook in hooks:
        row.update(hook.after_round(plan, row))
      row['round_status'] = round_status
      csv_file.write(round_num, row)
      stop = next(filter(None, (h.stop_after(plan, row) for h in hooks)), None)
      if stop or _is_due(round_num, schedule.rounds_per_checkpoint, schedule.total_rounds):
        saved.save(state, round_num, csv_file.text())
        saved_round = round_num
      seconds.append(round_time + (eval_time or 0.0))
      say(_progress_line(round_num, schedule.total_rounds, row, seconds))
      if stop:
        status, message = stop.status, stop.message
        say(f'stopped: {stop.message}')
        break
  except BaseException as e:
    status, message = ended_by(e)
    raise
  finally:
    saved.remove_temporaries()
    saved.close()
    extra = {key: value for hook in hooks for key, value in hook.summary().items()}
    summary = write_summary(schedule, paths, status=status, message=message, extra=extra)
  return summary


def ended_by(error: BaseException) -> tuple[str, Optional[str]]:
  """(status, message) of a run that `error` ended: `interrupted` (Ctrl-C, SIGTERM, SIGHUP),
  else `failed` with the error."""
  if isinstance(error, KeyboardInterrupt):
    return 'interrupted', None
  return 'failed', f'{type(error).__name__}: {error}'


def write_summary(schedule: Schedule, paths: run_dir.RunPaths, *, status: str,
                  message: Optional[str], extra: Mapping[str, Any]) -> Optional[dict]:
  """summary.json from metrics.csv plus the hooks' fields; on a full disk or unreadable CSV,
  as much as possible."""
  try:
    summary = {**summary_lib.summarize(
        paths.metrics_csv, target_accuracy=schedule.target_accuracy, status=status,
        total_rounds=schedule.total_rounds, message=message), **extra}
  except (OSError, ValueError, KeyError):
    summary = {'status': status, 'total_rounds': schedule.total_rounds, 'message': message,
               **extra}
  try:
    files.write_json_atomic(paths.summary_json, summary)
  except OSError:
    pass  # E.g. the disk is full: the run's error says so; the checkpoint is intact.
  return summary
