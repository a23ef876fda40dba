"""--stop_at_target: the StopAtTarget hook, and a run it ends."""

import io

import numpy as np
import pytest
import tensorflow_federated as tff

from tff_experiments.core import config as config_lib
from tff_experiments.results import run_dir
from tff_experiments.runner import hooks
from tff_experiments.runner import loop
from tff_experiments.runner import round_plan
from tff_experiments.runner import round_runner


def _plan(round_num):
  return round_plan.RoundPlanner(['a', 'b', 'c'], seed=0, clients_per_round=2).plan(round_num)


@pytest.mark.parametrize('accuracy,stops', [
    (0.79, False), (0.8, True), (0.95, True), (None, False), (float('nan'), False)])
def test_stop_at_target_stops_at_or_above_the_target(accuracy, stops):
  stop = hooks.StopAtTarget(0.8).stop_after(_plan(3), {'eval/accuracy': accuracy})
  assert (stop is not None) == stops
  if stops:
    assert stop.status == 'target_reached' and 'round 3' in stop.message


def test_stop_at_target_requires_a_target_and_is_recorded_only_with_one(make_config):
  with pytest.raises(config_lib.ConfigError, match='--stop_at_target requires --target_accuracy'):
    make_config(stop_at_target=True)
  assert 'stop_at_target' not in config_lib.active_flat(make_config())
  assert config_lib.active_flat(make_config(target_accuracy=0.5))['stop_at_target'] is False


class _Output:
  def __init__(self, state, metrics):
    self.state, self.metrics = state, metrics


class _Process:
  """State grows by 1 per round; evaluation reads accuracy state / 10."""

  def initialize(self):
    return np.float32(0.0)

  def next(self, state, tasks):
    return _Output(state + np.float32(1.0), {'client_work': {'train': {
        'loss': np.float32(1.0), 'num_clients': len(tasks), 'nonfinite_clients': 0}}})

  def get_model_weights(self, state):
    return tff.learning.models.ModelWeights((np.asarray(state),), ())


def _run_loop(tmp_path, extra_hooks, total=10):
  schedule = loop.Schedule(total_rounds=total, rounds_per_eval=1, rounds_per_checkpoint=5,
                           target_accuracy=0.3)
  return loop.run(schedule, rounds=round_runner.PlainRounds(_Process()),
                  planner=round_plan.RoundPlanner(['a', 'b', 'c'], seed=0, clients_per_round=2),
                  evaluate=lambda w: {'accuracy': float(w.trainable[0]) / 10},
                  paths=run_dir.RunPaths(str(tmp_path)),
                  hooks=hooks.default_hooks() + list(extra_hooks), out=io.StringIO())


def test_a_run_ends_as_target_reached_after_the_round_that_reaches_it(tmp_path):
  summary = _run_loop(tmp_path, [hooks.StopAtTarget(0.3)])
  assert summary['status'] == 'target_reached'
  assert summary['rounds_completed'] == 3 and summary['rounds_to_target'] == pytest.approx(3.0)
  assert 'target_reached' in run_dir.FINAL_STATUSES  # Re-running the command skips it.
