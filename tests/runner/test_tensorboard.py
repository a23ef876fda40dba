"""--tensorboard: each round's numeric columns as TensorBoard scalars, continuous on resume."""

import pytest
import tensorflow as tf

from tff_experiments.runner import round_plan
from tff_experiments.runner import tensorboard


def _plan(round_num):
  return round_plan.RoundPlanner(['a', 'b', 'c'], seed=0, clients_per_round=2).plan(round_num)


def _scalars(directory):
  """{tag: {step: value}} of every event file in `directory` (later files win)."""
  values = {}
  for path in sorted(tf.io.gfile.glob(f'{directory}/events.out.tfevents.*')):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        values.setdefault(value.tag, {})[event.step] = float(tf.make_ndarray(value.tensor))
  return values


def test_tensorboard_gets_every_numeric_column_at_its_round(tmp_path):
  hook = tensorboard.TensorBoardHook(str(tmp_path / 'tb'))
  for round_num in (1, 2):
    hook.after_round(_plan(round_num), {'train/loss': 1.0 / round_num, 'eval/accuracy': None,
                                        'plan/clients_reporting': 2, 'round_status': 'ok',
                                        'flag': True})
  assert _scalars(tmp_path / 'tb') == {'train/loss': {1: 1.0, 2: 0.5},
                                       'plan/clients_reporting': {1: 2.0, 2: 2.0}}


def test_tensorboard_after_a_resume_rewrites_the_same_steps(tmp_path):
  first = tensorboard.TensorBoardHook(str(tmp_path))
  for round_num in (1, 2, 3):
    first.after_round(_plan(round_num), {'eval/accuracy': 0.1 * round_num})
  resumed = tensorboard.TensorBoardHook(str(tmp_path))  # Checkpoint of round 2: redo 3.
  resumed.after_round(_plan(3), {'eval/accuracy': 0.3})
  assert _scalars(tmp_path)['eval/accuracy'] == pytest.approx({1: 0.1, 2: 0.2, 3: 0.3})


def test_event_files_go_under_the_run_directory(tmp_path):
  assert tensorboard.log_dir(str(tmp_path)) == str(tmp_path / 'tensorboard')
