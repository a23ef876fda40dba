"""The client-file cache as a safe store (datasets.cache_dirs): damage is detected by the cache's
own checksums and repaired; concurrent writers and abandoned temp directories are handled."""

import concurrent.futures
import hashlib
import json
import logging
import os
import pathlib
import re
import shutil
import time

import numpy as np
import pytest

from datasets import base
from datasets import client_file_reader
from datasets import client_files
import cache_fixtures

def _cache_files(directory) -> dict[str, bytes]:
  return {name: (directory / name).read_bytes() for name in sorted(os.listdir(directory))}


def _assert_reads_back(data, clients) -> None:
  assert data.client_ids == sorted(clients)
  for cid, (x, y) in clients.items():
    got_x, got_y = cache_fixtures.read_client(data, cid)
    np.testing.assert_array_equal(got_x, x.astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(got_y, y)


def test_meta_records_the_size_and_sha256_of_every_client_file(tmp_path):
  client_files.write_client_files(cache_dir=str(tmp_path), fingerprint='fp',
                                  clients=cache_fixtures.uint8_clients())
  meta = json.loads((tmp_path / 'fp' / 'meta.json').read_text())
  assert meta['format_version'] == client_files.FORMAT_VERSION >= 3
  assert sorted(meta['clients']) == ['a', 'b', 'c']
  for record in meta['clients'].values():
    content = (tmp_path / 'fp' / record['file']).read_bytes()
    assert record['size'] == len(content)
    assert record['sha256'] == hashlib.sha256(content).hexdigest()


_FILE_A, _FILE_B = client_file_reader.file_name('a'), client_file_reader.file_name('b')


def _truncate(path):
  with open(path / _FILE_A, 'r+b') as f:
    f.truncate(os.path.getsize(path / _FILE_A) // 2)


def _flip_one_byte(path):
  with open(path / _FILE_A, 'r+b') as f:  # Same size, one pixel byte differs.
    f.seek(100)
    byte = f.read(1)
    f.seek(100)
    f.write(bytes([byte[0] ^ 0xFF]))


def _set_meta_field(path, **changes):
  meta = json.loads((path / 'meta.json').read_text())
  meta.update(changes)
  (path / 'meta.json').write_text(json.dumps(meta))


@pytest.mark.parametrize('damage, reason', [
    (_truncate, re.escape(_FILE_A) + r' has \d+ bytes'),
    (_flip_one_byte, re.escape(_FILE_A) + r' has changed \(sha256'),
    (lambda p: os.remove(p / _FILE_B), re.escape(_FILE_B) + ' is missing'),
    (lambda p: [os.remove(p / n) for n in os.listdir(p) if n.endswith('.tfrecord')],
     'is missing'),
    (lambda p: os.remove(p / 'meta.json'), 'meta.json is missing'),
    (lambda p: (p / 'meta.json').write_bytes(b'{"format_version": 3, "dty'),
     'meta.json is unreadable'),
    (lambda p: (p / 'meta.json').write_bytes(b'\xff\xfe\x00garbage'), 'meta.json is unreadable'),
    (lambda p: _set_meta_field(p, format_version=2), 'meta.json is inconsistent'),
    (lambda p: _set_meta_field(p, shape=[6, 5]), 'meta.json is inconsistent'),
    (lambda p: _set_meta_field(p, clients={'a': {'file': _FILE_A}, 'b': {}, 'c': {}}),
     'meta.json is inconsistent'),
], ids=['truncated', 'byte_flipped', 'file_deleted', 'all_files_deleted', 'meta_deleted',
        'meta_cut', 'meta_not_utf8', 'meta_old_version', 'meta_bad_shape', 'meta_no_hashes'])
def test_damaged_cache_is_rebuilt_with_one_warning(tmp_path, caplog, damage, reason):
  clients = cache_fixtures.uint8_clients()
  client_files.write_client_files(cache_dir=str(tmp_path), fingerprint='fp', clients=clients)
  intact = _cache_files(tmp_path / 'fp')
  damage(tmp_path / 'fp')
  assert _cache_files(tmp_path / 'fp') != intact
  with caplog.at_level(logging.WARNING):
    data = client_files.write_client_files(cache_dir=str(tmp_path), fingerprint='fp',
                                           clients=clients)
  _assert_reads_back(data, clients)
  assert _cache_files(tmp_path / 'fp') == intact  # The same bytes as the first write.
  warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
  assert len(warnings) == 1
  message = warnings[0].getMessage()
  assert str(tmp_path / 'fp') in message and 'rebuilding' in message
  assert re.search(reason, message), message
  # Nothing left beside it but the lock file of the swap.
  assert sorted(os.listdir(tmp_path)) == ['.fp.lock', 'fp']
  # And the rebuilt cache is reused as is from then on.
  caplog.clear()
  mtimes = {f: os.stat(tmp_path / 'fp' / f).st_mtime_ns for f in os.listdir(tmp_path / 'fp')}
  with caplog.at_level(logging.WARNING):
    client_files.write_client_files(cache_dir=str(tmp_path), fingerprint='fp', clients=clients)
  assert not caplog.records
  assert {f: os.stat(tmp_path / 'fp' / f).st_mtime_ns
          for f in os.listdir(tmp_path / 'fp')} == mtimes


def test_cache_deleted_between_runs_is_written_again(tmp_path):
  clients = cache_fixtures.uint8_clients()
  client_files.write_client_files(cache_dir=str(tmp_path), fingerprint='fp', clients=clients)
  shutil.rmtree(tmp_path / 'fp')
  data = client_files.write_client_files(cache_dir=str(tmp_path), fingerprint='fp',
                                         clients=clients)
  _assert_reads_back(data, clients)


def test_damaged_cache_holding_foreign_files_is_reported_not_deleted(tmp_path):
  clients = cache_fixtures.uint8_clients()
  client_files.write_client_files(cache_dir=str(tmp_path), fingerprint='fp', clients=clients)
  _truncate(tmp_path / 'fp')
  (tmp_path / 'fp' / 'notes.txt').write_text('mine')
  with pytest.raises(base.DataError, match=r'fp is damaged .*notes\.txt.*delete it'):
    client_files.write_client_files(cache_dir=str(tmp_path), fingerprint='fp', clients=clients)
  assert (tmp_path / 'fp' / 'notes.txt').read_text() == 'mine'


def test_cache_that_stays_damaged_gives_up_after_bounded_rebuilds(tmp_path, monkeypatch, caplog):
  clients = cache_fixtures.uint8_clients()
  client_files.write_client_files(cache_dir=str(tmp_path), fingerprint='fp', clients=clients)
  _truncate(tmp_path / 'fp')
  real_write_temp = client_files._write_temp

  def write_temp_on_a_failing_disk(*args):  # Every fresh copy loses the end of a file.
    temp = real_write_temp(*args)
    _truncate(pathlib.Path(temp))
    return temp

  monkeypatch.setattr(client_files, '_write_temp', write_temp_on_a_failing_disk)
  with caplog.at_level(logging.WARNING), pytest.raises(base.DataError,
                                                       match='fp.*even after 2 rebuilds'):
    client_files.write_client_files(cache_dir=str(tmp_path), fingerprint='fp', clients=clients)
  assert len([r for r in caplog.records if 'rebuilding' in r.getMessage()]) == 2
  assert sorted(os.listdir(tmp_path)) == ['.fp.lock', 'fp']


def test_concurrent_replacement_wins_and_this_copy_is_dropped(tmp_path, monkeypatch):
  clients = cache_fixtures.uint8_clients()
  client_files.write_client_files(cache_dir=str(tmp_path), fingerprint='fp', clients=clients)
  _truncate(tmp_path / 'fp')
  real_write_temp = client_files._write_temp
  installed = []

  def write_temp_while_another_caller_swaps(cache_dir, fp, clients_):
    temp = real_write_temp(cache_dir, fp, clients_)
    if not installed:  # Another caller replaces the damaged directory first.
      other = real_write_temp(cache_dir, fp, clients_)
      os.rename(os.path.join(cache_dir, fp), os.path.join(cache_dir, '.fp.x.damaged'))
      os.rename(other, os.path.join(cache_dir, fp))
      shutil.rmtree(os.path.join(cache_dir, '.fp.x.damaged'))
      installed.append(os.stat(os.path.join(cache_dir, fp)).st_ino)
    return temp

  monkeypatch.setattr(client_files, '_write_temp', write_temp_while_another_caller_swaps)
  data = client_files.write_client_files(cache_dir=str(tmp_path), fingerprint='fp',
                                         clients=clients)
  _assert_reads_back(data, clients)
  assert os.stat(tmp_path / 'fp').st_ino == installed[0]  # Theirs stayed in place.
  assert sorted(os.listdir(tmp_path)) == ['.fp.lock', 'fp']


def test_concurrent_callers_on_a_damaged_cache_all_get_the_data(tmp_path):
  clients = cache_fixtures.uint8_clients()
  client_files.write_client_files(cache_dir=str(tmp_path), fingerprint='fp', clients=clients)
  _flip_one_byte(tmp_path / 'fp')
  with concurrent.futures.ThreadPoolExecutor(4) as pool:
    results = list(pool.map(
        lambda _: client_files.write_client_files(cache_dir=str(tmp_path), fingerprint='fp',
                                                  clients=clients), range(4)))
  for data in results:
    _assert_reads_back(data, clients)
  assert sorted(os.listdir(tmp_path)) == ['.fp.lock', 'fp']


def test_abandoned_partial_dirs_older_than_an_hour_are_removed(tmp_path):
  two_hours_ago = time.time() - 7200
  for name in ['.fp.old.partial', '.fp.new.partial', '.fp.old.damaged', '.other.old.partial']:
    (tmp_path / name).mkdir()
    (tmp_path / name / _FILE_A).write_bytes(b'junk')
    if '.old.' in name:
      os.utime(tmp_path / name, (two_hours_ago, two_hours_ago))
  clients = cache_fixtures.uint8_clients()
  data = client_files.write_client_files(cache_dir=str(tmp_path), fingerprint='fp',
                                         clients=clients)
  _assert_reads_back(data, clients)
  # Young ones may belong to a concurrent writer; other fingerprints are theirs to clean.
  assert sorted(os.listdir(tmp_path)) == ['.fp.new.partial', '.other.old.partial', 'fp']
  os.utime(tmp_path / '.fp.new.partial', (two_hours_ago, two_hours_ago))
  client_files.write_client_files(cache_dir=str(tmp_path), fingerprint='fp', clients=clients)
  assert sorted(os.listdir(tmp_path)) == ['.other.old.partial', 'fp']


@pytest.mark.parametrize('mask', [0o022, 0o027])
def test_a_cache_directory_and_its_files_follow_the_umask(tmp_path, umask, mask):
  umask(mask)
  client_files.write_client_files(cache_dir=str(tmp_path / 'cache'), fingerprint='fp',
                                  clients=cache_fixtures.uint8_clients())
  os.mkdir(tmp_path / 'reference')  # What any directory made under this umask gets.
  modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / 'cache' / 'fp').iterdir()}
  assert (tmp_path / 'cache' / 'fp').stat().st_mode & 0o777 == 0o777 & ~mask
  assert (tmp_path / 'reference').stat().st_mode & 0o777 == 0o777 & ~mask
  assert len(modes) == 4 and set(modes.values()) == {0o666 & ~mask}  # meta.json + 3 clients.
