"""The round loop with a fake process and planner: skips, aborts, hooks, divergence, resume."""

import contextlib
import io
import math

import numpy as np
import pandas as pd
import pytest
import tensorflow_federated as tff

import reference
from tff_experiments.core import files
from tff_experiments.evaluation import centralized
from tff_experiments.results import run_dir
from tff_experiments.runner import checkpoints
from tff_experiments.runner import hooks
from tff_experiments.runner import loop
from tff_experiments.runner import round_plan
from tff_experiments.runner import round_runner


class _Output:
  def __init__(self, state, metrics):
    self.state, self.metrics = state, metrics


class _CountingProcess:
  """State = a float that grows by 1 per applied round; reports what the test asks for."""

  def __init__(self, measurements=lambda round_num, tasks: {}):
    self.calls, self._measurements = [], measurements

  def initialize(self):
    return np.float32(0.0)

  def next(self, state, tasks):
    self.calls.append(len(tasks))
    metrics = {'client_work': {'train': {'loss': np.float32(1.0), 'accuracy': np.float32(0.5),
                                         'num_clients': len(tasks), 'nonfinite_clients': 0}},
               **self._measurements(len(self.calls), tasks)}
    return _Output(state + np.float32(1.0), metrics)

  def get_model_weights(self, state):
    return tff.learning.models.ModelWeights((np.asarray(state),), ())


def _evaluate(weights):
  return {'accuracy': float(weights.trainable[0]) / 10, 'loss': 1.0, 'extra_metric': 7}


class _Ledger(hooks.RoundHook):
  """A stateful hook: clients that reported so far (rebuilt from plans on resume)."""

  def __init__(self):
    self.total = 0

  def replay(self, plan):
    self.total += len(plan.reporting)

  def after_round(self, plan, row):
    self.total += len(plan.reporting)
    return {'ledger/clients_so_far': self.total}


def _run(tmp_path, process, *, total=4, adjustments=(), extra_hooks=(), checkpoint_every=1):
  paths = run_dir.RunPaths(str(tmp_path))
  planner = round_plan.RoundPlanner([f'c{i}' for i in range(6)], seed=0, clients_per_round=3,
                                    adjustments=adjustments)
  schedule = loop.Schedule(total_rounds=total, rounds_per_eval=1,
                           rounds_per_checkpoint=checkpoint_every)
  summary = loop.run(schedule, rounds=round_runner.PlainRounds(process), planner=planner,
                     evaluate=_evaluate, paths=paths,
                     hooks=hooks.default_hooks() + list(extra_hooks), out=io.StringIO())
  return summary, pd.read_csv(paths.metrics_csv)


def test_skipped_round_runs_nothing_and_keeps_the_model(tmp_path):
  outage = lambda plan, rng: plan.drop(plan.sampled) if plan.round_num == 2 else plan
  process = _CountingProcess()
  summary, frame = _run(tmp_path, process, adjustments=[('outage', outage)])
  assert process.calls == [3, 3, 3]  # Round 2 never reached the process.
  assert list(frame['round_status']) == ['ok', 'skipped', 'ok', 'ok']
  assert list(frame['eval/accuracy']) == pytest.approx([0.1, 0.1, 0.2, 0.3])
  assert list(frame['plan/clients_reporting']) == [3, 0, 3, 3]
  assert summary['status'] == 'completed' and summary['rounds_skipped'] == 1


def test_aborted_round_keeps_the_old_model(tmp_path):
  abort_second = lambda n, tasks: {'aggregator': {'aborted': n == 2}}
  summary, frame = _run(tmp_path, _CountingProcess(abort_second))
  assert list(frame['round_status']) == ['ok', 'aborted', 'ok', 'ok']
  assert list(frame['eval/accuracy']) == pytest.approx([0.1, 0.1, 0.2, 0.3])
  assert summary['rounds_aborted'] == 1


def test_every_eval_metric_and_hook_column_reaches_the_csv(tmp_path):
  _, frame = _run(tmp_path, _CountingProcess(), extra_hooks=[_Ledger()])
  assert list(frame['eval/extra_metric']) == [7] * 4
  assert list(frame['ledger/clients_so_far']) == [3, 6, 9, 12]


def test_a_hook_replays_the_rounds_before_a_resume(tmp_path):
  class CrashAt(hooks.RoundHook):
    def after_round(self, plan, row):
      if plan.round_num == 3:
        raise RuntimeError('crash')
      return {}

  with pytest.raises(RuntimeError):
    _run(tmp_path, _CountingProcess(), extra_hooks=[_Ledger(), CrashAt()], checkpoint_every=2)
  assert files.read_json(str(tmp_path / 'summary.json'))['status'] == 'failed'
  _, frame = _run(tmp_path, _CountingProcess(), extra_hooks=[_Ledger()], checkpoint_every=2)
  assert list(frame['ledger/clients_so_far']) == [3, 6, 9, 12]
  assert list(frame['eval/accuracy']) == pytest.approx([0.1, 0.2, 0.3, 0.4])


def test_a_round_where_every_update_is_non_finite_ends_the_run_as_diverged(tmp_path):
  class NonFinite(_CountingProcess):
    def next(self, state, tasks):
      output = super().next(state, tasks)
      output.metrics['client_work']['train']['nonfinite_clients'] = len(tasks)
      output.metrics['client_work']['train']['loss'] = np.float32(math.nan)
      return output

  summary, frame = _run(tmp_path, NonFinite())
  assert list(frame['round_num']) == [1]
  assert summary['status'] == 'diverged' and 'non-finite' in summary['message']
  assert run_dir.FINAL_STATUSES.count('diverged') == 1


class _DivergingLinearModel(_CountingProcess):
  """Softmax regression (reference.linear_model's shapes) that predicts class 1 everywhere,
  until its weights turn NaN in round 3 (its clients still report finite updates)."""

  def get_model_weights(self, state):
    w = np.zeros((4, 3), np.float32)
    b = np.array([0.0, 1.0, 0.0], np.float32)
    if state >= 3:
      w[:] = np.nan
    return tff.learning.models.ModelWeights((w, b), ())


def test_a_non_finite_model_has_no_accuracy_and_ends_the_run_as_diverged(tmp_path):
  # Every test label is 0: argmax over a NaN model's logits is 0, which would score 1.0.
  evaluate = centralized.build_evaluator(reference.linear_model(0),
                                         test_x=np.ones((20, *reference.SHAPE), np.float32),
                                         test_y=np.zeros(20, np.int32))
  paths = run_dir.RunPaths(str(tmp_path))
  planner = round_plan.RoundPlanner([f'c{i}' for i in range(6)], seed=0, clients_per_round=3)
  summary = loop.run(loop.Schedule(total_rounds=5, rounds_per_eval=1, rounds_per_checkpoint=1),
                     rounds=round_runner.PlainRounds(_DivergingLinearModel()), planner=planner,
                     evaluate=evaluate, paths=paths, hooks=hooks.default_hooks(),
                     out=io.StringIO())
  frame = pd.read_csv(paths.metrics_csv)
  assert list(frame['eval/accuracy'][:2]) == [0.0, 0.0]
  assert math.isnan(frame['eval/accuracy'][2]) and math.isnan(frame['eval/loss'][2])
  assert summary['status'] == 'diverged' and summary['rounds_completed'] == 3
  assert 'test loss is nan' in summary['message']
  assert summary['final_accuracy'] is None and summary['best_accuracy'] == 0.0
  assert files.read_json(paths.summary_json) == summary


def test_a_hook_can_stop_the_run_before_a_round(tmp_path):
  class Budget(hooks.RoundHook):
    def before_round(self, plan):
      return hooks.Stop('budget_exhausted', 'spent') if plan.round_num == 3 else None

  process = _CountingProcess()
  summary, frame = _run(tmp_path, process, extra_hooks=[Budget()])
  assert process.calls == [3, 3] and list(frame['round_num']) == [1, 2]
  assert summary['status'] == 'budget_exhausted' and summary['message'] == 'spent'


def test_a_stop_before_a_round_checkpoints_every_row_so_far(tmp_path):
  class Budget(hooks.RoundHook):
    def before_round(self, plan):
      return hooks.Stop('budget_exhausted', 'spent') if plan.round_num == 4 else None

  _run(tmp_path, _CountingProcess(), total=6, extra_hooks=[Budget()], checkpoint_every=10)
  round_num, rows = checkpoints.newest_rows(str(tmp_path / 'checkpoints'))
  assert round_num == 3  # Not due by the schedule: saved because the run is over.
  assert rows == (tmp_path / 'metrics.csv').read_text()
  assert [line.split(',')[0] for line in rows.splitlines()[1:]] == ['1', '2', '3']


def test_every_call_to_the_worker_is_under_the_round_deadline(tmp_path):
  """A worker that stops answering between rounds (in get_model_weights) must not hang the run."""
  guarded = []

  @contextlib.contextmanager
  def guard(seconds):
    guarded.append(True)
    yield
    guarded.pop()

  class Checked(_CountingProcess):
    def next(self, state, tasks):
      assert guarded, 'next outside the deadline'
      return super().next(state, tasks)

    def get_model_weights(self, state):
      assert guarded, 'get_model_weights outside the deadline'
      return super().get_model_weights(state)

  schedule = loop.Schedule(total_rounds=2, rounds_per_eval=1, rounds_per_checkpoint=1)
  planner = round_plan.RoundPlanner([f'c{i}' for i in range(6)], seed=0, clients_per_round=3)
  summary = loop.run(schedule, rounds=round_runner.PlainRounds(Checked()), planner=planner,
                     evaluate=_evaluate, paths=run_dir.RunPaths(str(tmp_path)), guard=guard,
                     out=io.StringIO())
  assert summary['status'] == 'completed' and summary['rounds_completed'] == 2


def test_the_loop_hands_each_plan_whole_to_its_round_runner(tmp_path):
  """A runner that runs a protocol around the round (secure aggregation) sees the round number
  and the whole cohort, drop-outs included, not only the reporting clients' tasks."""
  class Recording:
    def __init__(self):
      self.plans = []

    def initialize(self):
      return np.float32(0.0)

    def run(self, state, plan):
      self.plans.append(plan)
      return _CountingProcess().next(state, plan.tasks())

    def get_model_weights(self, state):
      return _CountingProcess().get_model_weights(state)

  drop_first = lambda plan, rng: plan.drop(plan.sampled[:1])
  planner = round_plan.RoundPlanner([f'c{i}' for i in range(6)], seed=0, clients_per_round=3,
                                    adjustments=[('drop_first', drop_first)])
  rounds = Recording()
  loop.run(loop.Schedule(total_rounds=3, rounds_per_eval=1, rounds_per_checkpoint=1),
           rounds=rounds, planner=planner, evaluate=_evaluate,
           paths=run_dir.RunPaths(str(tmp_path)), out=io.StringIO())
  assert rounds.plans == [planner.plan(r) for r in (1, 2, 3)]
  assert all(len(p.sampled) == 3 and len(p.reporting) == 2 for p in rounds.plans)
