"""load_runs on synthetic run directories: discovery, columns, statuses, sweep points."""

import fcntl
import json
import os

import pandas as pd
import pytest

from tff_experiments.results import load_runs

_BASE = {'experiment_name': None, 'dataset': 'digits', 'algorithm': 'fedavg', 'seed': 0,
         'client_learning_rate': 0.1, 'target_accuracy': 0.5}


def _write_run(directory, *, rows, summary='completed', **hparams):
  """A run directory as launch.run_experiment writes it (summary=None: none yet)."""
  os.makedirs(directory)
  settings = {**_BASE, 'experiment_name': os.path.basename(directory), **hparams}
  (directory / 'hparams.json').write_text(json.dumps(settings))
  if rows is not None:
    pd.DataFrame(rows).to_csv(directory / 'metrics.csv', index=False)
  if summary:
    (directory / 'summary.json').write_text(json.dumps(
        {'status': summary, 'target_accuracy': settings.get('target_accuracy')}))
  return directory


def _rows(*accuracies, **extra):
  return [{'round_num': r, 'eval/accuracy': a, 'round_time_s': 1.0, 'eval_time_s': 0.5,
           **{k: v[r - 1] for k, v in extra.items()}} for r, a in enumerate(accuracies, 1)]


def test_finds_runs_in_run_dirs_sweep_dirs_and_globs(tmp_path):
  for name in ('a', 'b'):
    _write_run(tmp_path / 'sweep' / name, rows=_rows(0.1))
    (tmp_path / 'sweep' / name / 'checkpoints').mkdir()
  _write_run(tmp_path / 'single', rows=_rows(0.1))
  _write_run(tmp_path / 'deep' / 'x' / 'y', rows=_rows(0.1))
  found = load_runs.find_run_dirs([str(tmp_path / 'sweep'), str(tmp_path / 'si*'),
                                   str(tmp_path / 'deep'), str(tmp_path / 'sweep' / 'a')])
  assert found == [str(tmp_path / p) for p in ('sweep/a', 'sweep/b', 'single', 'deep/x/y')]
  with pytest.raises(load_runs.LoadError, match='nothing_here'):
    load_runs.find_run_dirs([str(tmp_path / 'nothing_here')])


def test_one_row_per_run_and_round_with_only_varying_settings(tmp_path):
  _write_run(tmp_path / 'r1', rows=_rows(0.2, 0.4), seed=0)
  _write_run(tmp_path / 'r2', rows=_rows(0.3, 0.5, 0.6, **{'privacy/epsilon': [1, 2, 3]}),
             seed=1, server_optimizer='sgdm', server_momentum=0.9)
  _write_run(tmp_path / 'r3', rows=_rows(0.1), seed=2, server_optimizer='adam')
  frame = load_runs.load_runs(str(tmp_path))
  assert load_runs.hparam_columns(frame) == ['seed', 'server_optimizer']
  assert list(frame.columns[:6]) == ['run', 'run_dir', 'status', 'problems', 'seed',
                                     'server_optimizer']
  assert frame['problems'].isna().all()
  assert 'dataset' not in frame and 'experiment_name' not in frame
  assert 'server_momentum' not in frame  # Recorded by one run only: it does not vary.
  assert list(frame['run']) == ['r1', 'r1', 'r2', 'r2', 'r2', 'r3']
  assert list(frame['round_num']) == [1, 2, 1, 2, 3, 1]
  # A column of some runs only is blank elsewhere.
  assert frame['privacy/epsilon'].isna().tolist() == [True, True, False, False, False, True]
  assert frame['summary/status'].tolist() == ['completed'] * 6
  assert frame['server_optimizer'].isna().tolist() == [True, True, False, False, False, False]


def test_statuses_of_running_unfinished_and_finished_runs(tmp_path):
  _write_run(tmp_path / 'done', rows=_rows(0.5), summary='diverged')
  _write_run(tmp_path / 'no_summary', rows=_rows(0.5, 0.6), summary=None)
  stale = _write_run(tmp_path / 'stale_lock', rows=_rows(0.5), summary=None)
  (stale / '.lock').write_text('1\n')
  live = _write_run(tmp_path / 'live', rows=_rows(0.5), summary='interrupted')
  with open(live / '.lock', 'w') as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)  # As a run in progress holds it.
    frame = load_runs.load_runs(str(tmp_path))
  status = frame.groupby('run')['status'].first().to_dict()
  assert status == {'done': 'diverged', 'no_summary': 'running', 'stale_lock': 'unfinished',
                    'live': 'running'}
  # A run without a summary is summarized from its metrics so far.
  no_summary = frame[frame['run'] == 'no_summary'].iloc[0]
  assert no_summary['summary/final_accuracy'] == 0.6
  assert no_summary['summary/rounds_to_target'] == 1.0


def test_a_run_without_rounds_and_failed_sweep_points_keep_one_row_in_sweep_order(tmp_path):
  sweep = tmp_path / 's'
  _write_run(sweep / 'ok', rows=_rows(0.5), client_learning_rate=0.1)
  _write_run(sweep / 'started', rows=None, summary=None, client_learning_rate=0.2)
  (sweep / 'sweep.json').write_text(json.dumps({'points': [
      {'name': 'ok', 'run_dir': str(sweep / 'ok'), 'state': 'done'},
      {'name': 'bad', 'run_dir': str(sweep / 'bad'), 'state': 'failed', 'message': 'boom',
       'hparams': {**_BASE, 'experiment_name': 'bad', 'client_learning_rate': 0.3}}]}))
  frame = load_runs.load_runs([str(sweep)])
  # In sweep.json's order; a run it does not list comes last.
  assert list(frame['run']) == ['ok', 'bad', 'started']
  assert frame['round_num'].isna().tolist() == [False, True, True]
  assert list(frame['client_learning_rate']) == [0.1, 0.3, 0.2]
  bad = frame[frame['run'] == 'bad'].iloc[0]
  assert (bad['status'], bad['summary/message']) == ('failed', 'boom')


def test_runs_with_the_same_name_are_told_apart_by_path(tmp_path):
  _write_run(tmp_path / 'a' / 'run', rows=_rows(0.1))
  _write_run(tmp_path / 'b' / 'run', rows=_rows(0.2))
  frame = load_runs.load_runs([str(tmp_path / 'a'), str(tmp_path / 'b')])
  assert list(frame['run']) == ['a/run', 'b/run']


def test_list_settings_become_text_cells(tmp_path):
  _write_run(tmp_path / 'x', rows=_rows(0.1), mlp_hidden_units=[32])
  _write_run(tmp_path / 'y', rows=_rows(0.1), mlp_hidden_units=[64, 64])
  frame = load_runs.load_runs(str(tmp_path))
  assert list(frame['mlp_hidden_units']) == ['32', '64,64']


def test_a_sweep_whose_every_point_failed_still_loads(tmp_path):
  (tmp_path / 'sweep.json').write_text(json.dumps({'points': [
      {'name': 'bad', 'run_dir': str(tmp_path / 'bad'), 'state': 'failed',
       'hparams': {**_BASE, 'experiment_name': 'bad'}}]}))
  frame = load_runs.load_runs(str(tmp_path))
  assert list(frame['run']) == ['bad'] and list(frame['status']) == ['failed']


def test_damaged_runs_are_read_as_far_as_they_go_and_marked(tmp_path):
  summary = {'status': 'completed', 'rounds_completed': 20}
  intact = _write_run(tmp_path / 'intact', rows=_rows(*[0.1] * 20))
  for name in ('garbled', 'empty', 'missing', 'tail', 'short'):
    run = _write_run(tmp_path / name, rows=_rows(*[0.5] * 20), summary=None)
    (run / 'summary.json').write_text(json.dumps(summary))
  (tmp_path / 'garbled' / 'metrics.csv').write_text('\x00\x01garbage\n')
  (tmp_path / 'empty' / 'metrics.csv').write_text('')
  os.remove(tmp_path / 'missing' / 'metrics.csv')
  with open(tmp_path / 'tail' / 'metrics.csv', 'ab') as f:
    f.write(b'\xff\xfe\xfd')
  pd.DataFrame(_rows(*[0.5] * 12)).to_csv(tmp_path / 'short' / 'metrics.csv', index=False)
  (intact / 'summary.json').write_text('{"status": "compl')
  frame = load_runs.load_runs(str(tmp_path))
  runs = frame.groupby('run', sort=False).agg(
      status=('status', 'first'), problems=('problems', 'first'), rounds=('round_num', 'max'))
  assert runs['status'].to_dict() == {
      'empty': 'unreadable', 'garbled': 'unreadable', 'intact': 'running',
      'missing': 'unreadable', 'short': 'completed', 'tail': 'completed'}
  assert runs.loc['tail', 'rounds'] == 20 and runs.loc['short', 'rounds'] == 12
  assert runs.loc['intact', 'rounds'] == 20  # Its rounds read; its summary could not be.
  assert runs['problems'].to_dict() == {
      'empty': 'metrics.csv is empty',
      'garbled': "metrics.csv: its header is not a metrics header ('\\x00\\x01garbage'); no "
                 'row read',
      'intact': 'summary.json is not readable JSON',
      'missing': 'metrics.csv is missing (summary.json records 20 rounds)',
      'short': 'metrics.csv holds rounds up to 12 of the 20 summary.json records',
      'tail': f'metrics.csv: bytes that are not UTF-8 at byte '
              f'{os.path.getsize(tmp_path / "tail" / "metrics.csv") - 3}; 20 row(s) before them '
              'read'}
