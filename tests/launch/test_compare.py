"""Comparison tables and figures on synthetic run directories (hand-computed numbers), and
`python -m launch.compare` end to end."""

import json
import math
import os
import struct
import subprocess
import sys

import pandas as pd
import pytest

from tff_experiments.results import compare
from tff_experiments.results import load_runs
from tff_experiments.results import plots

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _write_run(directory, accuracies, *, status='completed', extra=None, **hparams):
  """A run directory with eval accuracies per round (status None: no summary.json yet)."""
  os.makedirs(directory)
  settings = {'experiment_name': os.path.basename(directory), 'dataset': 'digits', 'seed': 0,
              'client_learning_rate': 0.1, 'target_accuracy': 0.5, **hparams}
  (directory / 'hparams.json').write_text(json.dumps(settings))
  rows = [{'round_num': r, 'eval/accuracy': a, 'round_time_s': 2.0, 'eval_time_s': 0.5,
           'train/num_clients': 10, **{k: v[r - 1] for k, v in (extra or {}).items()}}
          for r, a in enumerate(accuracies, 1)]
  pd.DataFrame(rows).to_csv(directory / 'metrics.csv', index=False)
  if status:
    (directory / 'summary.json').write_text(json.dumps(
        {'status': status, 'target_accuracy': settings['target_accuracy']}))


def test_per_run_table_with_disjoint_extra_columns_and_a_running_run(tmp_path):
  _write_run(tmp_path / 'dp', [0.2, 0.6, 0.55], client_learning_rate=0.1,
             extra={'privacy/epsilon': [0.5, 0.9, 1.2]})
  _write_run(tmp_path / 'quant', [0.3, 0.4], client_learning_rate=0.2,
             extra={'comm/uplink_bits_per_client': [100, 100]})
  _write_run(tmp_path / 'going', [0.1], client_learning_rate=0.3, status=None)
  table = compare.per_run(load_runs.load_runs(str(tmp_path))).set_index('run')
  assert list(table.columns) == ['status', 'client_learning_rate', 'rounds', 'final_accuracy',
                                 'best_accuracy', 'rounds_to_target', 'uplink_bits',
                                 'final_epsilon', 'wall_time_s']
  assert table.loc['going', 'status'] == 'running'
  assert table.loc['dp', ['rounds', 'final_accuracy', 'best_accuracy']].tolist() == [
      3, 0.55, 0.6]
  # Crossing 0.5 between round 1 (0.2) and round 2 (0.6): 1 + (0.5 - 0.2) / 0.4 = 1.75.
  assert table.loc['dp', 'rounds_to_target'] == pytest.approx(1.75)
  assert math.isnan(table.loc['quant', 'rounds_to_target'])
  assert table.loc['dp', 'final_epsilon'] == 1.2 and math.isnan(table.loc['quant',
                                                                          'final_epsilon'])
  assert table.loc['quant', 'uplink_bits'] == 2 * 100 * 10  # Per client x 10 clients.
  assert math.isnan(table.loc['dp', 'uplink_bits'])
  assert table.loc['going', 'wall_time_s'] == 2.5 and table.loc['dp', 'wall_time_s'] == 7.5
  text = compare.markdown(table.reset_index())
  assert text.splitlines()[0] == ('| run | status | client_learning_rate | rounds | final acc | '
                                  'best acc | rounds to target | uplink bits | final ε | '
                                  'wall time (s) |')
  assert '| going | running | 0.3 | 1 | 0.1000 | 0.1000 | – | – | – | 2.5 |' in text


def test_uplink_bits_prefer_the_per_round_total(tmp_path):
  _write_run(tmp_path / 'q', [0.3, 0.4], extra={'comm/uplink_bits_per_client': [100, 100],
                                                'comm/uplink_bits_round': [900, 950]})
  table = compare.per_run(load_runs.load_runs(str(tmp_path)))
  assert table['uplink_bits'].tolist() == [1850]


def _seed_grid(tmp_path):
  """2 learning rates x 3 seeds; final accuracies 0.5/0.6/0.7 and 0.2/0.4/0.9."""
  finals = {0.1: [0.5, 0.6, 0.7], 0.2: [0.2, 0.4, 0.9]}
  for lr, accuracies in finals.items():
    for seed, final in enumerate(accuracies):
      status = 'diverged' if (lr, seed) == (0.2, 0) else 'completed'
      _write_run(tmp_path / f'lr={lr}-seed={seed}', [0.1, final], client_learning_rate=lr,
                 seed=seed, status=status)
  return compare.per_run(load_runs.load_runs(str(tmp_path)))


def test_grouped_over_seeds_gives_mean_std_and_count(tmp_path):
  table = compare.grouped(_seed_grid(tmp_path), ['seed']).set_index('client_learning_rate')
  assert table.attrs['hparams'] == ['client_learning_rate']
  assert table.loc[0.1, 'runs'] == 3 and table.loc[0.1, 'status'] == '3 completed'
  assert table.loc[0.2, 'status'] == '1 diverged, 2 completed'
  assert table.loc[0.1, 'final_accuracy_mean'] == pytest.approx(0.6)
  assert table.loc[0.1, 'final_accuracy_std'] == pytest.approx(0.1)  # ddof=1.
  assert table.loc[0.2, 'final_accuracy_mean'] == pytest.approx(0.5)
  assert table.loc[0.2, 'final_accuracy_std'] == pytest.approx(math.sqrt(0.13))
  # Rounds to 0.5: 1 + 0.4/0.4 = 2 (final 0.5), 1 + 0.4/0.5, 1 + 0.4/0.6; lr 0.2: 1 + 0.4/0.8.
  assert table.loc[0.1, 'reached_target'] == '3/3' and table.loc[0.2, 'reached_target'] == '1/3'
  assert table.loc[0.1, 'rounds_to_target_mean'] == pytest.approx((2 + 1.8 + 1 + 4 / 6) / 3)
  assert math.isnan(table.loc[0.2, 'rounds_to_target_std'])  # One run reached it.


def test_grouped_markdown_and_csv(tmp_path):
  table = compare.grouped(_seed_grid(tmp_path), ['seed'])
  text = compare.markdown(table)
  assert text.splitlines()[0] == ('| client_learning_rate | runs | status | reached target | '
                                  'rounds | final acc | best acc | rounds to target | '
                                  'wall time (s) |')
  assert ('| 0.1 | 3 | 3 completed | 3/3 | 2 ± 0 | 0.6000 ± 0.1000 | 0.6000 ± 0.1000 | '
          '1.8 ± 0.2 | 5.0 ± 0.0 |') in text
  assert '| 0.2 | 3 | 1 diverged, 2 completed | 1/3 | 2 ± 0 | 0.5000 ± 0.3606 |' in text
  table.to_csv(tmp_path / 'g.csv', index=False)
  read = pd.read_csv(tmp_path / 'g.csv')
  assert read['final_accuracy_std'].tolist() == pytest.approx([0.1, math.sqrt(0.13)])


def _png_size(path):
  with open(path, 'rb') as f:
    head = f.read(24)
  assert head[:8] == b'\x89PNG\r\n\x1a\n' and head[12:16] == b'IHDR'
  return struct.unpack('>II', head[16:24])


def test_figures_are_valid_pngs_of_paper_size(tmp_path):
  _write_run(tmp_path / 'runs' / 'dp', [0.2, 0.6, 0.55], seed=0,
             extra={'privacy/epsilon': [0.5, 0.9, 1.2]})
  _write_run(tmp_path / 'runs' / 'dp1', [0.3, 0.5, 0.65], seed=1,
             extra={'privacy/epsilon': [0.5, 0.9, 1.2]})
  frame = load_runs.load_runs(str(tmp_path / 'runs'))
  written = plots.write_all(frame, str(tmp_path), over=['seed'])
  assert [os.path.basename(p) for p in written] == ['accuracy_vs_round.png',
                                                    'accuracy_vs_epsilon.png']
  for path in written:
    width, height = _png_size(path)
    assert 800 <= width <= 2400 and 500 <= height <= 1600
    assert os.path.getsize(path) > 10_000


def test_group_labels_name_the_varying_settings_and_unfinished_runs(tmp_path):
  _seed_grid(tmp_path)
  frame = load_runs.load_runs(str(tmp_path))
  assert plots.groups(frame, ['seed']) == {
      '0.1 (n=3)': ['lr=0.1-seed=0', 'lr=0.1-seed=1', 'lr=0.1-seed=2'],
      '0.2 (n=3; diverged)': ['lr=0.2-seed=0', 'lr=0.2-seed=1', 'lr=0.2-seed=2']}
  assert len(plots.groups(frame)) == 6  # Without grouping: a line per run.


def test_launch_compare_writes_tables_and_plots(tmp_path):
  _write_run(tmp_path / 's' / 'a', [0.2, 0.4], seed=0)
  _write_run(tmp_path / 's' / 'b', [0.3, 0.5], seed=1, extra={'extra/only_here': [1, 2]})
  _write_run(tmp_path / 's' / 'c', [0.1], seed=2, status=None)
  out = tmp_path / 'out'
  done = subprocess.run([sys.executable, '-m', 'launch.compare', str(tmp_path / 's'),
                         f'--output_dir={out}'], cwd=_ROOT, capture_output=True, text=True,
                        timeout=120)
  assert done.returncode == 0, done.stderr
  assert sorted(os.listdir(out)) == ['accuracy_vs_round.png', 'runs.csv', 'runs.md']
  assert len((out / 'runs.csv').read_text().splitlines()) == 4
  assert '| c | running | 2 |' in (out / 'runs.md').read_text()
  assert (out / 'runs.md').read_text() in done.stdout
  missing = subprocess.run([sys.executable, '-m', 'launch.compare', str(tmp_path / 'none'),
                            f'--output_dir={out}'], cwd=_ROOT, capture_output=True, text=True,
                           timeout=120)
  assert missing.returncode == 2 and 'none' in missing.stderr


def _compare(*args):
  return subprocess.run([sys.executable, '-m', 'launch.compare', *map(str, args)], cwd=_ROOT,
                        capture_output=True, text=True, timeout=120)


def test_launch_compare_reads_damaged_runs_as_far_as_they_go_and_says_so(tmp_path):
  for name in ('good', 'tail', 'empty', 'missing'):
    _write_run(tmp_path / 's' / name, [0.1 * (r % 9) for r in range(1, 21)])
    (tmp_path / 's' / name / 'summary.json').write_text(json.dumps(  # As a finished run's.
        {'status': 'completed', 'rounds_completed': 20}))
  with open(tmp_path / 's' / 'tail' / 'metrics.csv', 'ab') as f:
    f.write(b'\xff\xfe\xfd')
  (tmp_path / 's' / 'empty' / 'metrics.csv').write_text('')
  os.remove(tmp_path / 's' / 'missing' / 'metrics.csv')
  out = tmp_path / 'out'
  done = _compare(tmp_path / 's', f'--output_dir={out}')
  assert done.returncode == 0, done.stderr
  warnings = [l for l in done.stderr.splitlines() if l.startswith('warning:')]
  assert len(warnings) == 3 and warnings[0] == (
      'warning: empty (unreadable): metrics.csv is empty')
  assert warnings[1] == ('warning: missing (unreadable): metrics.csv is missing (summary.json '
                         'records 20 rounds)')
  assert warnings[2].startswith(
      'warning: tail (completed): metrics.csv: bytes that are not UTF-8 at byte ')
  table = pd.read_csv(out / 'runs.csv').set_index('run')
  assert table['status'].to_dict() == {'empty': 'unreadable', 'good': 'completed',
                                       'missing': 'unreadable', 'tail': 'completed'}
  assert table.loc['tail', 'rounds'] == 20 == table.loc['good', 'rounds']  # All 20 valid rows.
  assert table.loc['tail', 'final_accuracy'] == table.loc['good', 'final_accuracy']
  assert table['problems'].isna().to_dict() == {'empty': False, 'good': True, 'missing': False,
                                                'tail': False}
  assert '| missing | unreadable | metrics.csv is missing' in (out / 'runs.md').read_text()


def test_output_dir_must_be_a_directory_of_its_own(tmp_path):
  _write_run(tmp_path / 's' / 'a', [0.2, 0.4])
  (tmp_path / 'file').write_text('mine')
  for output_dir, what in [(tmp_path / 'file', 'is a file, not a directory'),
                           (tmp_path / 's' / 'a', f'is the run directory {tmp_path / "s" / "a"}'),
                           (tmp_path / 's' / 'a' / 'cmp',
                            f'is inside the run directory {tmp_path / "s" / "a"}')]:
    before = sorted(os.listdir(tmp_path / 's' / 'a'))
    done = _compare(tmp_path / 's', f'--output_dir={output_dir}')
    assert done.returncode == 2 and done.stdout == ''
    assert done.stderr == f'compare: error: --output_dir={output_dir} {what}' + (
        '' if 'file' in what else '; choose a directory of its own') + '\n'
    assert sorted(os.listdir(tmp_path / 's' / 'a')) == before
  assert (tmp_path / 'file').read_text() == 'mine'


def test_only_the_files_it_wrote_are_listed(tmp_path):
  _write_run(tmp_path / 's' / 'a', [0.2, 0.4])
  (tmp_path / 'out').mkdir()
  (tmp_path / 'out' / 'notes.txt').write_text('mine')
  done = _compare(tmp_path / 's', f'--output_dir={tmp_path / "out"}')
  assert done.returncode == 0, done.stderr
  assert done.stdout.splitlines()[-1] == (f'1 runs (1 completed); wrote accuracy_vs_round.png, '
                                          f'runs.csv, runs.md in {tmp_path / "out"}')
