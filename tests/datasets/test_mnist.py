"""Tests for datasets.idx, datasets.download and datasets.mnist (offline: downloads are faked)."""

import gzip
import hashlib
import io
import os
import struct
import urllib.error

import numpy as np
import pytest

from datasets import base
from datasets import download
from datasets import idx
from datasets import mnist

# The offline data copy beside the checkout (see ../shared/data/README.md).
SHARED_MNIST = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'shared', 'data', 'mnist')


def _idx_bytes(array: np.ndarray, code: int) -> bytes:
  """IDX encoding written independently of the reader: magic, big-endian dims and values."""
  header = struct.pack('>BBBB', 0, 0, code, array.ndim)
  header += struct.pack(f'>{array.ndim}I', *array.shape)
  return header + array.astype(array.dtype.newbyteorder('>')).tobytes()


def _write_gz(path, data: bytes) -> None:
  with gzip.open(path, 'wb') as f:
    f.write(data)


def _tiny_mnist(directory, *, n_train=12, n_test=5, seed=0):
  """Writes the four MNIST files with random content; returns the arrays."""
  rng = np.random.default_rng(seed)
  arrays = {
      mnist.TRAIN_IMAGES: rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
      mnist.TRAIN_LABELS: rng.integers(0, 10, n_train).astype(np.uint8),
      mnist.TEST_IMAGES: rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
      mnist.TEST_LABELS: rng.integers(0, 10, n_test).astype(np.uint8),
  }
  os.makedirs(directory, exist_ok=True)
  for name, array in arrays.items():
    _write_gz(os.path.join(directory, name), _idx_bytes(array, 0x08))
  return arrays


class _FakeResponse(io.BytesIO):
  """A urlopen response serving `data`; raises mid-stream when `fail_after` bytes are read."""

  def __init__(self, data: bytes, fail_after: int | None = None):
    super().__init__(data)
    self._fail_after = fail_after

  def read(self, size=-1):
    if self._fail_after is not None and self.tell() >= self._fail_after:
      raise ConnectionResetError('connection reset by peer')
    return super().read(size)


def _fake_urlopen(monkeypatch, serve):
  """Replaces urllib's urlopen with `serve(url) -> _FakeResponse`; returns the call log."""
  calls = []

  def urlopen(url, timeout=None):
    calls.append((url, timeout))
    return serve(url)

  monkeypatch.setattr(download.urllib.request, 'urlopen', urlopen)
  return calls


def test_idx_read_matches_written_arrays(tmp_path):
  images = np.random.default_rng(0).integers(0, 256, (3, 4, 5), dtype=np.uint8)
  _write_gz(tmp_path / 'a.gz', _idx_bytes(images, 0x08))
  np.testing.assert_array_equal(idx.read(str(tmp_path / 'a.gz')), images)
  shorts = np.arange(-6, 6, dtype=np.int16).reshape(3, 4)  # Multi-byte: checks endianness.
  (tmp_path / 'b.idx').write_bytes(_idx_bytes(shorts, 0x0B))
  got = idx.read(str(tmp_path / 'b.idx'))
  np.testing.assert_array_equal(got, shorts)
  assert got.dtype == np.int16


@pytest.mark.parametrize('corrupt', ['truncated_gzip', 'truncated_payload', 'bad_magic',
                                     'not_gzip'])
def test_idx_read_rejects_damaged_files_naming_them(tmp_path, corrupt):
  data = _idx_bytes(np.zeros((4, 28, 28), np.uint8), 0x08)
  path = tmp_path / 'train-images-idx3-ubyte.gz'
  if corrupt == 'truncated_gzip':
    _write_gz(path, data)
    path.write_bytes(path.read_bytes()[:-20])
  elif corrupt == 'truncated_payload':
    _write_gz(path, data[:-100])
  elif corrupt == 'bad_magic':
    _write_gz(path, b'\x01\x02' + data[2:])
  else:
    path.write_bytes(data)
  with pytest.raises(base.DataError, match='train-images-idx3-ubyte.gz'):
    idx.read(str(path))


def test_load_arrays_reads_the_four_files(tmp_path):
  arrays = _tiny_mnist(tmp_path)
  loaded = mnist.load_arrays(str(tmp_path))
  assert loaded.train_x.shape == (12, 28, 28, 1) and loaded.train_x.dtype == np.uint8
  np.testing.assert_array_equal(loaded.train_x[..., 0], arrays[mnist.TRAIN_IMAGES])
  np.testing.assert_array_equal(loaded.test_y, arrays[mnist.TEST_LABELS])
  assert loaded.train_y.dtype == np.int32 and loaded.num_classes == 10


def test_label_count_mismatch_names_the_labels_file(tmp_path):
  _tiny_mnist(tmp_path)
  _write_gz(tmp_path / mnist.TEST_LABELS, _idx_bytes(np.zeros(4, np.uint8), 0x08))
  with pytest.raises(base.DataError, match=mnist.TEST_LABELS):
    mnist.load_arrays(str(tmp_path))


def _tiny_served_files(monkeypatch):
  """Gz files to serve for the four names, with IDX_SHA256 patched to their content."""
  served = {}
  for name, array in {mnist.TRAIN_IMAGES: np.ones((3, 28, 28), np.uint8),
                      mnist.TRAIN_LABELS: np.array([1, 2, 3], np.uint8),
                      mnist.TEST_IMAGES: np.ones((2, 28, 28), np.uint8),
                      mnist.TEST_LABELS: np.array([4, 5], np.uint8)}.items():
    raw = _idx_bytes(array, 0x08)
    served[name] = gzip.compress(raw)
    monkeypatch.setitem(mnist.IDX_SHA256, name, hashlib.sha256(raw).hexdigest())
  return served


def test_missing_files_are_downloaded_verified_and_loaded(tmp_path, monkeypatch):
  served = _tiny_served_files(monkeypatch)
  calls = _fake_urlopen(monkeypatch,
                        lambda url: _FakeResponse(served[url.rsplit('/', 1)[1]]))
  data_dir = tmp_path / 'new' / 'mnist'
  loaded = mnist.load_arrays(str(data_dir))
  np.testing.assert_array_equal(loaded.train_y, [1, 2, 3])
  assert sorted(os.listdir(data_dir)) == sorted(served)  # No temp files left.
  assert sorted(url for url, _ in calls) == sorted(mnist.MIRROR + n for n in served)
  assert all(0 < timeout <= 60 for _, timeout in calls)
  mnist.load_arrays(str(data_dir))
  assert len(calls) == 4  # Cached files are not fetched again.


@pytest.mark.parametrize('failure', ['checksum', 'truncated', 'offline'])
def test_failed_download_leaves_no_file_and_no_new_directory(tmp_path, monkeypatch, failure):
  served = _tiny_served_files(monkeypatch)

  def serve(url):
    data = served[url.rsplit('/', 1)[1]]
    if failure == 'offline':
      raise urllib.error.URLError('[Errno -3] Temporary failure in name resolution')
    if failure == 'checksum':
      return _FakeResponse(gzip.compress(b'\x00\x00\x08\x01\x00\x00\x00\x01\x07'))
    return _FakeResponse(data, fail_after=len(data) // 2)

  _fake_urlopen(monkeypatch, serve)
  data_dir = tmp_path / 'a' / 'b'
  with pytest.raises(base.DataError, match='--data_dir') as raised:
    mnist.load_arrays(str(data_dir))
  assert mnist.TRAIN_IMAGES in str(raised.value)
  assert os.listdir(tmp_path) == []  # Neither a/ nor a/b/ nor partial files remain.


def test_failed_download_into_existing_dir_keeps_it_and_only_complete_files(tmp_path, monkeypatch):
  served = _tiny_served_files(monkeypatch)

  def serve(url):
    name = url.rsplit('/', 1)[1]
    if name == mnist.TEST_IMAGES:
      return _FakeResponse(served[name], fail_after=10)
    return _FakeResponse(served[name])

  _fake_urlopen(monkeypatch, serve)
  with pytest.raises(base.DataError, match='could not be downloaded'):
    mnist.load_arrays(str(tmp_path))
  assert mnist.TEST_IMAGES not in os.listdir(tmp_path)
  assert all(not name.startswith('.') for name in os.listdir(tmp_path))
  for name in os.listdir(tmp_path):  # Whatever completed is whole and verified.
    assert gzip.decompress((tmp_path / name).read_bytes()) == gzip.decompress(served[name])


@pytest.mark.skipif(not os.path.isdir(SHARED_MNIST), reason='shared MNIST copy not present')
def test_real_files_match_the_hard_coded_content_checksums(tmp_path, monkeypatch):
  # Serve the shared (re-compressed) copies as if from the mirror: the content checks pass.
  for name in (mnist.TRAIN_IMAGES, mnist.TEST_IMAGES):  # Big files: link, don't download.
    os.symlink(os.path.join(SHARED_MNIST, name), tmp_path / name)

  def serve(url):
    with open(os.path.join(SHARED_MNIST, url.rsplit('/', 1)[1]), 'rb') as f:
      return _FakeResponse(f.read())

  calls = _fake_urlopen(monkeypatch, serve)
  mnist.ensure_files(str(tmp_path))
  assert len(calls) == 2
  for name in (mnist.TRAIN_LABELS, mnist.TEST_LABELS):
    assert (tmp_path / name).read_bytes() == open(os.path.join(SHARED_MNIST, name), 'rb').read()
  for name in (mnist.TRAIN_IMAGES, mnist.TEST_IMAGES):
    mnist._verifier(name)(os.path.join(SHARED_MNIST, name))  # Raises on mismatch.


@pytest.mark.skipif(not os.path.isdir(SHARED_MNIST), reason='shared MNIST copy not present')
def test_real_mnist_label_counts_and_shapes():
  loaded = mnist.load_arrays(SHARED_MNIST)
  assert loaded.train_x.shape == (60000, 28, 28, 1) and loaded.test_x.shape == (10000, 28, 28, 1)
  assert np.bincount(loaded.train_y).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918,
                                                  6265, 5851, 5949]
  assert len(loaded.test_y) == 10000
  np.testing.assert_allclose(loaded.train_x.mean() / 255, 0.1307, atol=1e-4)


def test_created_directory_keeps_dirs_that_existed(tmp_path):
  with pytest.raises(RuntimeError):
    with download.created_directory(str(tmp_path / 'x' / 'y')):
      raise RuntimeError('boom')
  assert tmp_path.is_dir() and os.listdir(tmp_path) == []
