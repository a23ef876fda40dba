"""Faults that end a run with one line, not a traceback: bad output locations, a name too long,
a read-only or full filesystem, an unexpected error (its traceback goes to a log)."""

import os
import subprocess

import pytest

import faults_helpers as fh
from launch import run_experiment
from tff_experiments import experiment

pytestmark = pytest.mark.slow


@pytest.mark.parametrize('setup,flag', [
    (lambda t: (t / 'out').write_text('a file'), 'root_output_dir'),
    (lambda t: (t / 'out').mkdir() or (t / 'out' / 'run').write_text('a file'), 'run'),
    (lambda t: (t / 'cache').write_text('a file'), 'cache_dir'),
])
def test_bad_output_locations_fail_before_loading_data(tmp_path, capsys, monkeypatch, setup,
                                                       flag):
  setup(tmp_path)
  before = fh.tree_digest(tmp_path)
  monkeypatch.setattr(experiment, 'load_data', lambda config: pytest.fail('data was loaded'))
  code, err = fh.main_in_process(fh.run_flags(tmp_path), capsys)
  assert code == 2 and flag in err and 'Traceback' not in err
  assert fh.tree_digest(tmp_path) == before


def test_a_name_too_long_for_the_filesystem_is_refused(tmp_path, capsys):
  code, err = fh.main_in_process(fh.run_flags(tmp_path, name='n' * 300), capsys)
  assert code == 2 and '--experiment_name' in err and 'allows 255' in err
  assert not (tmp_path / 'out').exists()


def test_a_read_only_output_filesystem_is_refused(tmp_path, capsys):
  with fh.tmpfs(tmp_path / 'ro', '1m') as mount:
    subprocess.run(['mount', '-o', 'remount,ro', str(mount)], check=True)
    code, err = fh.main_in_process(
        [f'--root_output_dir={mount}/results', '--experiment_name=x',
         f'--cache_dir={tmp_path / "cache"}'], capsys)
  assert code == 2 and '--root_output_dir' in err and 'read-only' in err


def test_a_full_disk_fails_with_one_message_and_resumes_after_space_is_freed(tmp_path):
  with fh.tmpfs(tmp_path / 'small', '200k') as mount:
    args = [f'--root_output_dir={mount}', '--experiment_name=full', '--total_rounds=60',
            '--num_clients=10', '--clients_per_round=3', f'--cache_dir={tmp_path / "cache"}',
            '--rounds_per_checkpoint=1']
    done = fh.launch(args)
    assert done.returncode == 1 and 'the disk is full' in done.stderr, done.stderr[-1500:]
    assert 'Traceback' not in done.stderr
    checkpoints = mount / 'full' / 'checkpoints'
    assert not [p for p in os.listdir(checkpoints) if '_temp' in p]
    subprocess.run(['mount', '-o', 'remount,size=64m', str(mount)], check=True)
    resumed = fh.launch(args)
    assert resumed.returncode == 0, resumed.stderr[-1500:]
    assert fh.rounds(mount / 'full') == list(range(1, 61))


def test_an_unexpected_error_is_one_line_with_a_log_of_the_traceback(tmp_path, capsys,
                                                                    monkeypatch):
  monkeypatch.setattr(run_experiment, '_train',
                      lambda *args: (_ for _ in ()).throw(RuntimeError('boom')))
  code, err = fh.main_in_process(fh.run_flags(tmp_path), capsys)
  assert code == 1 and err.count('\n') == 1 and 'RuntimeError: boom' in err
  log_path = err.split('traceback in ')[1].rstrip(')\n')
  assert 'Traceback' in open(log_path).read()
