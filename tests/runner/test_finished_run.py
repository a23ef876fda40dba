"""A finished run's metrics.csv (runner.finished_run): checked against summary.json, restored
byte for byte from the final checkpoint when damaged, and left alone when it cannot be."""

import json
import os

import numpy as np
import pytest

from tff_experiments.results import run_dir
from tff_experiments.runner import checkpoints
from tff_experiments.runner import finished_run

# A finished 3-round run's rows, as metrics.csv holds them (the reference for every restore).
_ROWS = ('round_num,train/loss,eval/accuracy,round_status\n'
         '1,2.25,0.5,ok\n2,1.5,0.625,ok\n3,1.25,0.75,ok\n')


def _finished_run(tmp_path, *, checkpointed=((2, 2), (3, 3)), rounds_completed=3):
  """A run directory whose checkpoints hold the first `rows` rows at each `round`."""
  paths = run_dir.RunPaths(str(tmp_path / 'run'))
  os.makedirs(paths.run_dir)
  saved = checkpoints.Checkpoints(paths.checkpoints_dir, say=print)
  lines = _ROWS.splitlines(keepends=True)
  for round_num, rows in checkpointed:
    saved.save(np.float32(round_num), round_num, ''.join(lines[:rows + 1]))
  saved.close()
  with open(paths.metrics_csv, 'w', encoding='utf-8') as f:
    f.write(''.join(lines[:rounds_completed + 1]))
  with open(paths.summary_json, 'w', encoding='utf-8') as f:
    json.dump({'status': 'completed', 'rounds_completed': rounds_completed}, f)
  return paths


_DAMAGE = {
    'deleted': lambda path: os.remove(path),
    'emptied': lambda path: open(path, 'w').close(),
    'last_row_short_of_fields': lambda path: _write(path, _ROWS[:-5]),  # '3,1.25,0.7'
    'last_row_cut_in_its_last_field': lambda path: _write(path, _ROWS[:-2]),  # Parses: 'o'.
    'last_row_dropped': lambda path: _write(path, _ROWS[:_ROWS.rindex('3,')]),
    'garbled': lambda path: _write(path, '\x00\xff,,"\n1,2,3\n'),
    'not_utf8': lambda path: open(path, 'ab').write(b'\xff\xfe\xfd'),
}


def _write(path, text):
  with open(path, 'w', encoding='utf-8') as f:
    f.write(text)


@pytest.mark.parametrize('damage', sorted(_DAMAGE))
def test_a_damaged_file_is_restored_from_the_final_checkpoint(tmp_path, damage):
  paths = _finished_run(tmp_path)
  _DAMAGE[damage](paths.metrics_csv)
  line = finished_run.restore_metrics(paths)
  assert line.startswith(f'restored {paths.metrics_csv} (it ') and '\n' not in line
  assert 'rounds 1-3 from the checkpoint of round 3' in line
  with open(paths.metrics_csv, encoding='utf-8') as f:
    assert f.read() == _ROWS
  assert not [n for n in os.listdir(paths.run_dir) if n.endswith('.tmp')]


def test_an_intact_file_is_left_alone(tmp_path):
  paths = _finished_run(tmp_path)
  os.utime(paths.metrics_csv, (1, 1))
  assert finished_run.restore_metrics(paths) is None
  assert os.path.getmtime(paths.metrics_csv) == 1


@pytest.mark.parametrize('checkpointed', [(), ((2, 2),)], ids=['none', 'only_round_2'])
def test_without_a_checkpoint_of_every_row_it_is_refused_untouched(tmp_path, checkpointed):
  paths = _finished_run(tmp_path, checkpointed=checkpointed)
  _DAMAGE['last_row_cut_in_its_last_field'](paths.metrics_csv)
  with open(paths.metrics_csv, 'rb') as f:
    damaged = f.read()
  with pytest.raises(run_dir.RunDirError, match='cannot be restored') as refused:
    finished_run.restore_metrics(paths)
  assert str(paths.metrics_csv) in str(refused.value) and '--overwrite' in str(refused.value)
  assert 'not rounds 1-3' in str(refused.value)
  with open(paths.metrics_csv, 'rb') as f:
    assert f.read() == damaged


def test_a_run_that_ended_before_its_first_round_gets_its_header_back(tmp_path):
  paths = _finished_run(tmp_path, checkpointed=(), rounds_completed=0)
  os.remove(paths.metrics_csv)
  assert 'no rounds' in finished_run.restore_metrics(paths)
  with open(paths.metrics_csv, encoding='utf-8') as f:
    assert f.read() == 'round_num\n'
