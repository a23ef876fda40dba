"""Atomic writes (core.files): all or nothing, and the file's mode follows the umask."""

import os
import stat

import pytest

from tff_experiments.core import files


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
