"""Downloads (datasets.download): the file appears whole under its name, as readable as the
umask makes any file."""

import os
import pathlib

import pytest

from datasets import download


@pytest.mark.parametrize('mask', [0o022, 0o027])
def test_a_download_follows_the_umask_and_leaves_no_temp(tmp_path, umask, mask):
  source = tmp_path / 'served.bin'
  source.write_bytes(b'payload' * 1000)
  (tmp_path / 'data').mkdir()
  umask(mask)
  dest = tmp_path / 'data' / 'file.bin'
  download.fetch(url=pathlib.Path(source).as_uri(), dest=str(dest))
  assert dest.read_bytes() == source.read_bytes()
  assert dest.stat().st_mode & 0o777 == 0o666 & ~mask
  assert os.listdir(tmp_path / 'data') == ['file.bin']
