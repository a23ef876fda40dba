"""The round loop, the same for every algorithm: sample, train, evaluate, record, checkpoint.

Resuming is a property of the loop: state and round come from the latest checkpoint, cohorts
and shuffles are functions of (seed, round), and metrics rows after the checkpoint are
replaced as their rounds are redone, so a resumed run ends with the same metrics.csv as an
uninterrupted one.
"""

import asyncio
import datetime
import os
import sys
import time
from typing import Callable, Mapping, Optional, Sequence, TextIO

import tensorflow_federated as tff

from tff_experiments import client_data
from tff_experiments import config as config_lib
from tff_experiments import files
from tff_experiments import metrics
from tff_experiments import results

Evaluator = Callable[[tff.learning.models.ModelWeights], Mapping[str, float]]
# Checkpoints kept besides the first (TFF keeps the first for reproducibility).
_CHECKPOINTS_KEPT = 3


def _is_due(round_num: int, every: int, total: int) -> bool:
  return round_num % every == 0 or round_num == total


def _progress_line(round_num: int, total: int, row: Mapping, seconds: Sequence[float]) -> str:
  recent = seconds[-10:]
  per_round = sum(recent) / len(recent)
  eta = datetime.timedelta(seconds=round(per_round * (total - round_num)))
  acc = row.get('eval/accuracy')
  eval_text = f'eval_acc {acc:.4f}' if acc is not None else 'eval_acc   -   '
  return (f'round {round_num:>{len(str(total))}}/{total}  train_loss {row["train/loss"]:.4f}  '
          f'train_acc {row["train/accuracy"]:.4f}  {eval_text}  '
          f'{per_round:.2f} s/round  ETA {eta}')


def run(config: config_lib.ExperimentConfig, *,
        process: tff.learning.templates.LearningProcess, client_ids: Sequence[str],
        evaluate: Evaluator, paths: results.RunPaths,
        out: Optional[TextIO] = None) -> dict:
  """Runs (or resumes) `process` for `config.total_rounds` rounds; returns the summary.

  `process.next` takes the keys made by `client_data.client_keys`.
  """
  out = out or sys.stdout
  loop = asyncio.new_event_loop()
  status = 'failed'
  try:
    state_manager = tff.program.FileProgramStateManager(
        paths.checkpoints_dir, keep_total=_CHECKPOINTS_KEPT, keep_first=True)
    metrics_csv = metrics.MetricsCsv(paths.metrics_csv)
    state = process.initialize()
    saved_state, saved_round = loop.run_until_complete(state_manager.load_latest(state))
    start = 0
    if saved_state is not None:
      state, start = saved_state, saved_round
      print(f'resuming {paths.run_dir} from the checkpoint of round {start}', file=out,
            flush=True)
    sample = tff.simulation.build_uniform_sampling_fn(
        list(client_ids), replace=False, random_seed=config.seed)
    seconds = []
    for round_num in range(start + 1, config.total_rounds + 1):
      cohort = sample(round_num, config.clients_per_round)
      keys = client_data.client_keys(cohort, seed=config.seed, round_num=round_num)
      began = time.perf_counter()
      output = process.next(state, keys)
      round_time = time.perf_counter() - began
      state = output.state
      eval_metrics, eval_time = None, None
      if _is_due(round_num, config.rounds_per_eval, config.total_rounds):
        began = time.perf_counter()
        eval_metrics = evaluate(process.get_model_weights(state))
        eval_time = time.perf_counter() - began
      row = metrics.row(round_metrics=output.metrics, eval_metrics=eval_metrics,
                        round_time_s=round_time, eval_time_s=eval_time)
      metrics_csv.write(round_num, row)
      if _is_due(round_num, config.rounds_per_checkpoint, config.total_rounds):
        loop.run_until_complete(state_manager.save(state, round_num))
      seconds.append(round_time + (eval_time or 0.0))
      print(_progress_line(round_num, config.total_rounds, row, seconds), file=out, flush=True)
    status = 'completed'
  except KeyboardInterrupt:
    status = 'interrupted'
    raise
  finally:
    loop.close()
    if os.path.exists(paths.metrics_csv):
      summary = results.summarize(paths.metrics_csv, target_accuracy=config.target_accuracy,
                                  status=status, total_rounds=config.total_rounds)
      files.write_json_atomic(paths.summary_json, summary)
  return summary

