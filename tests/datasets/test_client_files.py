"""Tests for datasets.client_files: exact round trip, element spec, file backing, atomic cache."""

import collections
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_federated as tff

from datasets import base
from datasets import client_file_reader
from datasets import client_files
import cache_fixtures

_SPEC = collections.OrderedDict(
    x=tf.TensorSpec(shape=(6, 5, 1), dtype=tf.float32),
    y=tf.TensorSpec(shape=(), dtype=tf.int32))


def test_uint8_round_trip_is_exact_and_scaled_to_unit_interval(tmp_path):
  clients = cache_fixtures.uint8_clients()
  data = client_files.write_client_files(cache_dir=str(tmp_path), fingerprint='fp',
                                         clients=clients)
  assert data.client_ids == ['a', 'b', 'c']
  assert data.element_type_structure == _SPEC
  for cid, (x, y) in clients.items():
    got_x, got_y = cache_fixtures.read_client(data, cid)
    assert got_x.dtype == np.float32 and got_y.dtype == np.int32
    np.testing.assert_array_equal(got_x, x.astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(got_y, y)
    assert 0.0 <= got_x.min() and got_x.max() <= 1.0
  # The test-set conversion matches the file decoding bit for bit.
  np.testing.assert_array_equal(client_files.to_unit_float(clients['a'][0]), cache_fixtures.read_client(data, 'a')[0])


@pytest.mark.usefixtures('tff_worker')
def test_pixels_read_inside_a_tff_computation_equal_the_test_set_conversion(tmp_path):
  # TFF optimizes its computations' graphs with Grappler, whose rewrites must not change a
  # pixel: every uint8 value decodes exactly as `to_unit_float` (numpy's x / 255) does.
  x = np.arange(256, dtype=np.uint8).reshape(4, 8, 8, 1)
  data = client_files.write_client_files(cache_dir=str(tmp_path), fingerprint='fp',
                                         clients={'a': (x, np.arange(4))})

  @tff.tensorflow.computation(tf.string)
  def read(client_id):
    return data.serializable_examples_fn(client_id)['x']

  np.testing.assert_array_equal(read('a'), client_files.to_unit_float(x))


def test_float32_round_trip_is_exact(tmp_path):
  rng = np.random.default_rng(1)
  x = rng.random((7, 8, 8, 1), dtype=np.float32)
  x[0, 0, 0, 0], x[0, 0, 1, 0] = 0.0, 1.0
  data = client_files.write_client_files(cache_dir=str(tmp_path), fingerprint='fp',
                                         clients={'0000': (x, np.arange(7))})
  got_x, got_y = cache_fixtures.read_client(data, '0000')
  np.testing.assert_array_equal(got_x, x)
  np.testing.assert_array_equal(got_y, np.arange(7))
  assert data.element_type_structure['x'].shape == (8, 8, 1)


def test_serialized_dataset_fn_reads_files_instead_of_embedding_data(tmp_path):
  rng = np.random.default_rng(2)
  clients = {f'{i:04d}': (rng.integers(0, 256, size=(500, 28, 28, 1), dtype=np.uint8),
                          np.full(500, i)) for i in range(4)}  # ~1.5 MB of pixels.
  data = client_files.write_client_files(cache_dir=str(tmp_path), fingerprint='fp',
                                         clients=clients)

  @tf.function
  def label_sum(client_id):
    return data.serializable_dataset_fn(client_id).reduce(0, lambda s, e: s + e['y'])

  graph = label_sum.get_concrete_function(tf.TensorSpec([], tf.string)).graph
  assert graph.as_graph_def().ByteSize() < 100_000  # Paths and a parser, not the pixels.
  assert int(label_sum(tf.constant('0003'))) == 3 * 500


def _dataset_graph_bytes(data) -> int:
  @tf.function
  def first_label(client_id):
    return data.serializable_dataset_fn(client_id).reduce(0, lambda s, e: s + e['y'])
  return first_label.get_concrete_function(tf.TensorSpec([], tf.string)).graph.as_graph_def(
      ).ByteSize()


def test_a_client_dataset_does_not_grow_with_the_number_of_clients(tmp_path):
  def tiny(n):
    return {f'writer/{i}': (np.full((1, 2, 2, 1), i % 256, np.uint8), np.array([i % 7]))
            for i in range(n)}
  few = client_files.write_client_files(cache_dir=str(tmp_path), fingerprint='few',
                                        clients=tiny(3))
  many = client_files.write_client_files(cache_dir=str(tmp_path), fingerprint='many',
                                         clients=tiny(2000))
  # The same graph but for the directory name: no per-client table (TFF's FilePerUserClientData
  # embeds one, ~100 bytes per client).
  assert abs(_dataset_graph_bytes(many) - _dataset_graph_bytes(few)) < 100
  assert int(cache_fixtures.read_client(many, 'writer/1999')[1][0]) == 1999 % 7


def test_existing_cache_dir_is_reused_without_rewriting(tmp_path):
  first = client_files.write_client_files(cache_dir=str(tmp_path), fingerprint='fp',
                                          clients=cache_fixtures.uint8_clients(seed=0))
  path = os.path.join(tmp_path, 'fp')
  mtimes = {f: os.stat(os.path.join(path, f)).st_mtime_ns for f in os.listdir(path)}
  # Same fingerprint: the cache is taken as is (so the fingerprint must capture the content).
  again = client_files.write_client_files(cache_dir=str(tmp_path), fingerprint='fp',
                                          clients=cache_fixtures.uint8_clients(seed=9))
  assert {f: os.stat(os.path.join(path, f)).st_mtime_ns for f in os.listdir(path)} == mtimes
  np.testing.assert_array_equal(cache_fixtures.read_client(again, 'a')[0], cache_fixtures.read_client(first, 'a')[0])
  assert sorted(os.listdir(tmp_path)) == ['fp']


def test_leftover_partial_write_is_not_taken_as_cache(tmp_path):
  partial = tmp_path / '.fp.killed.partial'
  partial.mkdir()
  (partial / client_file_reader.file_name('a')).write_bytes(b'junk')
  clients = cache_fixtures.uint8_clients()
  data = client_files.write_client_files(cache_dir=str(tmp_path), fingerprint='fp',
                                         clients=clients)
  np.testing.assert_array_equal(cache_fixtures.read_client(data, 'c')[1], clients['c'][1])


def test_failed_write_leaves_no_directory_behind(tmp_path, monkeypatch):
  calls = []
  real_write = client_files._write_client

  def failing_write(path, x, y):
    calls.append(1)
    if len(calls) > 1:  # The first client is written, the second fails.
      raise OSError('disk full')
    return real_write(path, x, y)

  monkeypatch.setattr(client_files, '_write_client', failing_write)
  with pytest.raises(OSError, match='disk full'):
    client_files.write_client_files(cache_dir=str(tmp_path), fingerprint='fp',
                                    clients=cache_fixtures.uint8_clients())
  assert os.listdir(tmp_path) == []


def test_cache_dir_with_other_clients_is_reported(tmp_path):
  client_files.write_client_files(cache_dir=str(tmp_path), fingerprint='fp',
                                  clients=cache_fixtures.uint8_clients())
  with pytest.raises(base.DataError, match='fp'):
    client_files.write_client_files(cache_dir=str(tmp_path), fingerprint='fp',
                                    clients={'zz': cache_fixtures.uint8_clients()['a']})


def test_cache_dir_without_meta_is_reported(tmp_path):
  (tmp_path / 'fp').mkdir()
  with pytest.raises(base.DataError, match='delete it'):
    client_files.write_client_files(cache_dir=str(tmp_path), fingerprint='fp',
                                    clients=cache_fixtures.uint8_clients())


@pytest.mark.parametrize('x, y, message', [
    (np.full((2, 3, 3, 1), 1.5, np.float32), np.zeros(2, int), r'\[0, 1\]'),
    (np.zeros((2, 3, 3, 1), np.int64), np.zeros(2, int), 'uint8'),
    (np.zeros((2, 3, 3), np.uint8), np.zeros(2, int), r'\[n, H, W, C\]'),
    (np.zeros((2, 3, 3, 1), np.uint8), np.zeros(3, int), 'y must be'),
    (np.zeros((0, 3, 3, 1), np.uint8), np.zeros(0, int), 'no examples'),
])
def test_bad_client_arrays_are_rejected(tmp_path, x, y, message):
  with pytest.raises(base.DataError, match=message):
    client_files.write_client_files(cache_dir=str(tmp_path), fingerprint='fp',
                                    clients={'a': (x, y)})
  assert os.listdir(tmp_path) == []


def test_fingerprint_tracks_content_and_ignores_key_order():
  spec = {'dataset': 'mnist', 'seed': 1, 'num_clients': 10}
  assert client_files.fingerprint(spec) == client_files.fingerprint(dict(reversed(spec.items())))
  assert client_files.fingerprint(spec) != client_files.fingerprint({**spec, 'seed': 2})
  a = np.arange(6, dtype=np.uint8)
  assert client_files.content_sha256(a) != client_files.content_sha256(a.reshape(2, 3))
  assert client_files.content_sha256(a) != client_files.content_sha256(a.astype(np.int32))


def _read_error_naming(path) -> Exception:
  """An error as the TFF worker reports a client file it could not open."""
  return RuntimeError(f'<_InactiveRpcError: status = StatusCode.INTERNAL details = "Failed to '
                      f'run computation: {path}; No such file or directory\n\t [[{{node x}}]]">')


def test_a_read_failure_is_explained_only_when_the_cache_lost_the_file(tmp_path):
  cache = tmp_path / 'cache'
  data = client_files.write_client_files(cache_dir=str(cache), fingerprint='fp',
                                         clients=cache_fixtures.uint8_clients())
  a_file = cache / 'fp' / client_file_reader.file_name('a')
  assert data.read_failure(_read_error_naming(a_file)) is None  # The file is there.
  assert data.read_failure(RuntimeError('some other failure')) is None
  a_file.unlink()
  line = data.read_failure(_read_error_naming(a_file))
  assert f'client-data cache {cache / "fp"}' in line and '--cache_dir' in line
  assert f'reading {a_file.name} failed' in line and '\n' not in line
  shutil.rmtree(cache)
  line = data.read_failure(RuntimeError('any error'))
  assert f'{cache / "fp"} under --cache_dir was deleted during the run' in line
  assert 'run the same command again' in line
