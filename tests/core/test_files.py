"""core.files: atomic writes (all or nothing, modes that follow the umask) and strict JSON (no
NaN/Infinity tokens, non-finite as null)."""

import json
import math
import os
import stat

import numpy as np
import pytest

from tff_experiments.core import files


def _strict_load(text):
  """json.loads that refuses NaN, Infinity and -Infinity, as strict parsers do."""
  def refuse(token):
    raise ValueError(f'non-standard JSON token {token}')
  return json.loads(text, parse_constant=refuse)


def test_json_text_is_strict_with_non_finite_numbers_as_null():
  value = {'a': math.inf, 'b': [-math.inf, math.nan, 1.5], 'c': (np.float32('nan'), 2),
           'd': {'e': np.float64(0.25), 'f': np.int64(3), 'g': np.bool_(True)},
           'h': np.array([1.0, np.inf]), 'i': None, 'j': 'text'}
  with pytest.raises(ValueError):  # What json.dumps alone would have written.
    _strict_load(json.dumps({'a': math.inf}))
  assert _strict_load(files.json_text(value)) == {
      'a': None, 'b': [None, None, 1.5], 'c': [None, 2],
      'd': {'e': 0.25, 'f': 3, 'g': True}, 'h': [1.0, None], 'i': None, 'j': 'text'}


def test_json_text_of_finite_values_is_plain_json_dumps():
  value = {'x': [1, 2.5, 'a', None, True], 'y': {'z': -0.125}}
  assert files.json_text(value) == json.dumps(value, indent=2)
  assert files.json_text(value, indent=None) == json.dumps(value)


def test_write_json_atomic_writes_strict_json(tmp_path):
  path = str(tmp_path / 'summary.json')
  files.write_json_atomic(path, {'final_epsilon': math.inf, 'best_accuracy': math.nan})
  with open(path, encoding='utf-8') as f:
    assert _strict_load(f.read()) == {'final_epsilon': None, 'best_accuracy': None}
  assert files.read_json(path) == {'final_epsilon': None, 'best_accuracy': None}


def _mode(path) -> int:
  return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize('mask', [0o022, 0o027, 0o077, 0o002])
def test_written_files_have_the_mode_a_plain_open_gives_under_the_umask(tmp_path, umask, mask):
  umask(mask)
  files.write_text_atomic(str(tmp_path / 'a.txt'), 'hello\n')
  files.write_json_atomic(str(tmp_path / 'b.json'), {'x': 1})
  with open(tmp_path / 'reference.txt', 'w', encoding='utf-8') as f:  # What users expect.
    f.write('x')
  assert _mode(tmp_path / 'reference.txt') == 0o666 & ~mask
  assert _mode(tmp_path / 'a.txt') == _mode(tmp_path / 'b.json') == 0o666 & ~mask
  assert sorted(os.listdir(tmp_path)) == ['a.txt', 'b.json', 'reference.txt']  # No temp left.


def test_rewriting_replaces_the_content_whole(tmp_path):
  path = str(tmp_path / 'f.txt')
  files.write_text_atomic(path, 'old content\n')
  files.write_text_atomic(path, 'new\n')
  assert open(path, encoding='utf-8').read() == 'new\n'
  assert os.listdir(tmp_path) == ['f.txt']


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
  path = str(tmp_path / 'f.txt')
  files.write_text_atomic(path, 'old\n')
  with pytest.raises(TypeError):
    files.write_text_atomic(path, b'not text')  # Fails inside the write.
  assert open(path, encoding='utf-8').read() == 'old\n'
  assert os.listdir(tmp_path) == ['f.txt']
