"""Faults of a run directory: overwrite refusals, concurrent starts, damaged metrics.csv or
checkpoints (resumed and finished runs), corrupt hparams.json / summary.json. Each ends with a
clear message and exit code and loses nothing."""

import json
import os

import pandas as pd
import pytest

import faults_helpers as fh

pytestmark = pytest.mark.slow


def test_overwrite_of_dot_is_refused_and_nothing_changes(tmp_path):
  out = tmp_path / 'out'
  (out / 'other_run').mkdir(parents=True)
  (out / 'notes.txt').write_text('mine')
  before = fh.tree_digest(out)
  done = fh.launch([f'--root_output_dir={out}', '--experiment_name=.', '--overwrite'])
  assert done.returncode != 0 and 'experiment_name' in done.stderr
  assert fh.tree_digest(out) == before


def test_overwrite_of_a_non_run_directory_is_refused_without_suggesting_overwrite(tmp_path):
  user_dir = tmp_path / 'out' / 'run'
  user_dir.mkdir(parents=True)
  (user_dir / 'thesis.tex').write_text('precious')
  before = fh.tree_digest(tmp_path / 'out')
  for extra in ([], ['--overwrite']):
    done = fh.launch(fh.run_flags(tmp_path) + extra)
    assert done.returncode == 2 and 'not a run of this package' in done.stderr
    assert '--overwrite' not in done.stderr
  assert fh.tree_digest(tmp_path / 'out') == before


def test_overwrite_of_a_run_replaces_it(tmp_path):
  assert fh.launch(fh.run_flags(tmp_path, rounds=2)).returncode == 0
  (tmp_path / 'out' / 'sibling.txt').write_text('keep')
  done = fh.launch(fh.run_flags(tmp_path, rounds=2, seed=4) + ['--overwrite'])
  assert done.returncode == 0, done.stderr[-1000:]
  assert json.loads((tmp_path / 'out' / 'run' / 'hparams.json').read_text())['seed'] == 4
  assert sorted(os.listdir(tmp_path / 'out')) == ['run', 'sibling.txt']


def test_two_concurrent_starts_under_one_name_leave_one_consistent_run(tmp_path):
  first = fh.start(fh.run_flags(tmp_path, rounds=4))
  fh.wait_for_line(first, 'round 1/')
  second = fh.launch(fh.run_flags(tmp_path, rounds=3, seed=9))
  assert second.returncode == 2  # A refusal, as the other run-directory refusals.
  assert 'in use by pid' in second.stderr or 'other settings' in second.stderr
  first.communicate(timeout=300)
  assert first.returncode == 0
  run = tmp_path / 'out' / 'run'
  hparams = json.loads((run / 'hparams.json').read_text())
  assert (hparams['seed'], hparams['total_rounds']) == (0, 4)
  assert fh.rounds(run) == [1, 2, 3, 4] and fh.summary(run)['status'] == 'completed'


_DAMAGE = {
    'truncate': lambda path: path.write_text(path.read_text()[:40]),
    'cut_mid_row': lambda path: path.write_bytes(path.read_bytes()[:-3]),
    'delete': lambda path: path.unlink(),
    'garbage': lambda path: path.write_bytes(b'\x00\xff,,"\n1,2,3,4,5,6\n'),
}


@pytest.mark.parametrize('damage', ['truncate', 'delete', 'garbage'])
def test_damaged_metrics_csv_is_rebuilt_from_the_checkpoint_on_resume(tmp_path, damage):
  args = fh.run_flags(tmp_path, rounds=4)
  fh.interrupt_after(args, 'round 3/')
  metrics = tmp_path / 'out' / 'run' / 'metrics.csv'
  before = pd.read_csv(metrics)
  checkpointed = before[before['round_num'] <= 3]  # Checkpoints are taken every round.
  _DAMAGE[damage](metrics)
  resumed = fh.launch(args)
  assert resumed.returncode == 0, resumed.stderr[-1500:]
  assert 'rebuilt rounds 1-' in resumed.stdout
  after = pd.read_csv(metrics)
  assert list(after['round_num']) == [1, 2, 3, 4]
  pd.testing.assert_frame_equal(after.iloc[:len(checkpointed)], checkpointed)


@pytest.mark.parametrize('damage', ['truncate', 'cut_mid_row', 'delete', 'garbage'])
def test_damaged_metrics_csv_of_a_finished_run_is_restored_on_rerun(tmp_path, damage):
  args = fh.run_flags(tmp_path, rounds=3, rounds_per_checkpoint=2)
  assert fh.launch(args).returncode == 0
  run = tmp_path / 'out' / 'run'
  original = (run / 'metrics.csv').read_bytes()
  _DAMAGE[damage](run / 'metrics.csv')
  again = fh.launch(args)
  assert again.returncode == 0, again.stderr[-1500:]
  lines = [l for l in again.stdout.splitlines() if 'metrics.csv' in l]
  assert len(lines) == 1 and 'restored' in lines[0] and 'rounds 1-3' in lines[0], again.stdout
  assert 'nothing to do' in again.stdout and again.stderr.strip() == ''
  assert (run / 'metrics.csv').read_bytes() == original  # Every row, time columns too.
  mtime = os.path.getmtime(run / 'metrics.csv')
  third = fh.launch(args)  # Intact now: nothing to say, nothing written.
  assert third.returncode == 0 and 'restored' not in third.stdout
  assert os.path.getmtime(run / 'metrics.csv') == mtime


def test_a_finished_run_whose_rows_no_checkpoint_holds_is_refused_untouched(tmp_path):
  args = fh.run_flags(tmp_path, rounds=2)
  assert fh.launch(args).returncode == 0
  run = tmp_path / 'out' / 'run'
  _DAMAGE['cut_mid_row'](run / 'metrics.csv')
  for checkpoint in (run / 'checkpoints').iterdir():  # Keep only the round-1 checkpoint.
    if checkpoint.name != 'program_state_1':
      os.rename(checkpoint, tmp_path / checkpoint.name)
  before = fh.tree_digest(run)
  refused = fh.launch(args)
  assert refused.returncode == 2 and refused.stderr.count('\n') == 1, refused.stderr
  assert 'metrics.csv' in refused.stderr and 'cannot be restored' in refused.stderr
  assert 'round 1' in refused.stderr and '--overwrite' in refused.stderr
  assert fh.tree_digest(run) == before


def test_corrupt_latest_checkpoint_falls_back_to_the_newest_intact_one(tmp_path):
  args = fh.run_flags(tmp_path, rounds=4)
  fh.interrupt_after(args, 'round 3/')
  checkpoints = tmp_path / 'out' / 'run' / 'checkpoints'
  latest = max(checkpoints.glob('program_state_*'), key=lambda p: int(p.name.split('_')[-1]))
  for path in latest.rglob('*'):
    if path.is_file():
      path.write_bytes(b'garbage')
  resumed = fh.launch(args)
  assert resumed.returncode == 0, resumed.stderr[-1500:]
  assert 'damaged checkpoint' in resumed.stdout and f'{latest}.damaged' in resumed.stdout
  assert fh.rounds(tmp_path / 'out' / 'run') == [1, 2, 3, 4]


def test_corrupt_hparams_is_named_and_corrupt_summary_is_rewritten(tmp_path):
  args = fh.run_flags(tmp_path, rounds=2)
  assert fh.launch(args).returncode == 0
  run = tmp_path / 'out' / 'run'
  (run / 'summary.json').write_text('{"status": "compl')
  again = fh.launch(args)
  assert again.returncode == 0 and 'summary.json' in again.stderr  # Warned, then resumed.
  assert fh.summary(run)['status'] == 'completed'
  (run / 'hparams.json').write_text('{not json')
  before = fh.tree_digest(run)
  refused = fh.launch(args)
  assert refused.returncode == 2 and 'hparams.json' in refused.stderr
  assert 'Traceback' not in refused.stderr and fh.tree_digest(run) == before
