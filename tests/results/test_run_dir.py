"""Run directories (start/resume/done/overwrite), rounds-to-target, summaries."""

import json
import os

import pytest

from tff_experiments.core import config as config_lib
from tff_experiments.results import metrics_csv as metrics
from tff_experiments.core import files
from tff_experiments.results import behaviour
from tff_experiments.results import run_dir
from tff_experiments.results import summary as summary_lib


@pytest.mark.parametrize('rounds,accs,target,expected', [
    # Crossing between round 2 (0.8) and 3 (1.0): 2 + (0.9 - 0.8) / 0.2 = 2.5.
    ([1, 2, 3], [0.5, 0.8, 1.0], 0.9, 2.5),
    # The curve is made monotone: the dip at round 3 does not count, crossing in 3..4 uses
    # best-so-far 0.8 at round 3: 3 + (0.85 - 0.8) / (0.9 - 0.8) = 3.5.
    ([1, 2, 3, 4], [0.5, 0.8, 0.6, 0.9], 0.85, 3.5),
    # Evaluated every 5 rounds: interpolation spans the gap, 5 + 5 * (0.9 - 0.7) / 0.3.
    ([5, 10], [0.7, 1.0], 0.9, 5 + 5 * 0.2 / 0.3),
    ([1, 2], [0.95, 0.99], 0.9, 1.0),   # Reached at the first evaluation.
    ([1, 2], [0.5, 0.6], 0.9, None),    # Never reached.
])
def test_rounds_to_target(rounds, accs, target, expected):
  got = summary_lib.rounds_to_target(rounds, accs, target)
  assert got == pytest.approx(expected) if expected is not None else got is None


def test_plan_start_resume_done_and_conflicts(tmp_path, make_config):
  config = make_config(root_output_dir=str(tmp_path), experiment_name='run')
  paths, action = run_dir.plan(config, overwrite=False)
  assert action == run_dir.Action.START and not os.path.exists(paths.run_dir)
  run_dir.create(paths, action, config).release()
  assert json.load(open(paths.hparams_json)) == {**config_lib.active_flat(config),
                                                 behaviour.KEY: behaviour.CURRENT}

  assert run_dir.plan(config, overwrite=False)[1] == run_dir.Action.RESUME
  files.write_json_atomic(paths.summary_json, {'status': 'completed'})
  assert run_dir.plan(config, overwrite=False)[1] == run_dir.Action.DONE
  assert run_dir.plan(config, overwrite=True)[1] == run_dir.Action.OVERWRITE

  other = make_config(root_output_dir=str(tmp_path), experiment_name='run', seed=5)
  with pytest.raises(run_dir.RunDirError, match='--seed'):
    run_dir.plan(other, overwrite=False)
  # Where the data lives does not change what a run computes.
  moved = make_config(root_output_dir=str(tmp_path), experiment_name='run', cache_dir='/else')
  assert run_dir.plan(moved, overwrite=False)[1] == run_dir.Action.DONE


def test_overwrite_replaces_the_directory(tmp_path, make_config):
  config = make_config(root_output_dir=str(tmp_path), experiment_name='run')
  paths, action = run_dir.plan(config, overwrite=False)
  run_dir.create(paths, action, config).release()
  open(paths.metrics_csv, 'w').write('round_num\n1\n')
  run_dir.create(paths, run_dir.Action.OVERWRITE, config).release()
  assert sorted(os.listdir(paths.run_dir)) == ['.lock', 'hparams.json']


def test_foreign_directory_is_refused(tmp_path, make_config):
  (tmp_path / 'run').mkdir()
  with pytest.raises(run_dir.RunDirError, match='--experiment_name'):
    run_dir.plan(make_config(root_output_dir=str(tmp_path), experiment_name='run'),
                 overwrite=False)


def test_summary_reads_all_rounds_of_the_csv(tmp_path):
  path = str(tmp_path / 'metrics.csv')
  csv_file = metrics.MetricsCsv(path)
  for r, acc in [(1, 0.5), (2, None), (3, 0.9), (4, 0.8)]:
    csv_file.write(r, {'eval/accuracy': acc, 'round_time_s': 1.0, 'eval_time_s': 0.5 if acc else None})
  summary = summary_lib.summarize(path, target_accuracy=0.7, status='completed', total_rounds=4)
  assert summary['final_accuracy'] == 0.8
  assert summary['best_accuracy'] == 0.9
  assert summary['rounds_to_target'] == pytest.approx(1 + 2 * 0.2 / 0.4)
  assert summary['rounds_completed'] == 4
  assert summary['wall_time_s'] == pytest.approx(4 * 1.0 + 3 * 0.5)


@pytest.mark.parametrize('finished', [False, True])
def test_a_run_of_earlier_behaviour_is_neither_resumed_nor_reported_done(
    tmp_path, make_config, finished):
  """A run started before a change that applies to its settings (no behaviour_version: 1)."""
  config = make_config(root_output_dir=str(tmp_path), experiment_name='run',
                       partition='dirichlet')
  paths, action = run_dir.plan(config, overwrite=False)
  run_dir.create(paths, action, config).release()
  hparams = json.load(open(paths.hparams_json))
  del hparams[behaviour.KEY]
  files.write_json_atomic(paths.hparams_json, hparams)
  if finished:
    files.write_json_atomic(paths.summary_json, {'status': 'completed'})
  with pytest.raises(run_dir.RunDirError, match='behaviour version 1.*NIID-Bench.*--overwrite'):
    run_dir.plan(config, overwrite=False)
  assert run_dir.plan(config, overwrite=True)[1] == run_dir.Action.OVERWRITE


def test_a_run_of_earlier_behaviour_resumes_when_no_change_applies(tmp_path, make_config):
  config = make_config(root_output_dir=str(tmp_path), experiment_name='run')
  paths, action = run_dir.plan(config, overwrite=False)
  run_dir.create(paths, action, config).release()
  hparams = json.load(open(paths.hparams_json))
  del hparams[behaviour.KEY]
  files.write_json_atomic(paths.hparams_json, hparams)
  assert run_dir.plan(config, overwrite=False)[1] == run_dir.Action.RESUME
