"""Tests for datasets.emnist on a tiny database in TFF's EMNIST schema, built here."""

import io
import lzma
import os
import sqlite3
import urllib.error
import zlib

import numpy as np
import pytest
import tensorflow as tf

from datasets import base
from datasets import download
from datasets import emnist
from datasets import registry

# client -> {split: labels}; pixels are derived from (client, label, position).
_LAYOUT = {
    'f0001_07': {'all_train': [3, 40, 5], 'all_test': [12], 'digits_only_train': [3, 5],
                 'digits_only_test': [7]},
    'f0000_02': {'all_train': [1, 61], 'all_test': [2, 50], 'digits_only_train': [1],
                 'digits_only_test': [2]},
    'f0002_11': {'all_train': [30], 'all_test': [9]},  # Only letters in train: no digits split.
}


def _pixels(client: str, split: str, position: int) -> np.ndarray:
  seed = zlib.crc32(f'{client}/{split}/{position}'.encode())
  return (np.random.default_rng(seed).integers(0, 256, 784) / 255).astype(np.float32)


def _example(pixels: np.ndarray, label: int) -> bytes:
  return tf.train.Example(features=tf.train.Features(feature={
      'pixels': tf.train.Feature(float_list=tf.train.FloatList(value=pixels)),
      'label': tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
  })).SerializeToString()


def _write_database(path) -> None:
  with sqlite3.connect(path) as db:
    db.execute('CREATE TABLE examples (split_name TEXT NOT NULL, client_id TEXT NOT NULL, '
               'serialized_example_proto BLOB NOT NULL)')
    db.execute('CREATE TABLE client_metadata (client_id TEXT NOT NULL, '
               'split_name TEXT NOT NULL, num_examples INTEGER NOT NULL)')
    for client, splits in _LAYOUT.items():
      for split, labels in splits.items():
        for position, label in enumerate(labels):
          db.execute('INSERT INTO examples VALUES (?, ?, ?)',
                     (split, client, _example(_pixels(client, split, position), label)))
        db.execute('INSERT INTO client_metadata VALUES (?, ?, ?)', (client, split, len(labels)))
  db.close()


def _expected(split: str):
  """(client -> (x, y)) for `split`, from the layout."""
  return {c: (np.stack([_pixels(c, split, i).reshape(28, 28, 1) for i in range(len(s[split]))]),
              np.array(s[split])) for c, s in _LAYOUT.items() if split in s}


def _load(data_dir, *, only_digits):
  return registry.load('emnist', data_dir=str(data_dir), cache_dir='/nonexistent',
                       partition='natural', num_clients=0, partition_params={}, seed=0,
                       only_digits=only_digits)


@pytest.mark.parametrize('only_digits', [True, False])
def test_clients_and_test_set_come_from_the_right_split(tmp_path, only_digits):
  _write_database(tmp_path / emnist.DATABASE)
  train_split, test_split = emnist.SPLITS[only_digits]
  data = _load(tmp_path, only_digits=only_digits)
  expected = _expected(train_split)
  assert data.train.client_ids == sorted(expected)
  assert data.num_classes == (10 if only_digits else 62)
  assert data.train.element_type_structure == {
      'x': tf.TensorSpec([28, 28, 1], tf.float32), 'y': tf.TensorSpec([], tf.int32)}
  for client, (x, y) in expected.items():
    elements = list(data.train.create_tf_dataset_for_client(client))
    np.testing.assert_array_equal(np.stack([e['x'].numpy() for e in elements]), x)
    np.testing.assert_array_equal([int(e['y']) for e in elements], y)
  test = _expected(test_split)
  np.testing.assert_array_equal(data.test_x, np.concatenate([test[c][0] for c in sorted(test)]))
  np.testing.assert_array_equal(data.test_y, np.concatenate([test[c][1] for c in sorted(test)]))
  assert data.test_x.dtype == np.float32 and data.test_y.dtype == np.int32


def test_train_clients_are_read_from_the_database_file(tmp_path):
  _write_database(tmp_path / emnist.DATABASE)
  data = _load(tmp_path, only_digits=False)

  @tf.function
  def count(client_id):
    return data.train.serializable_dataset_fn(client_id).reduce(0, lambda n, _: n + 1)

  assert int(count(tf.constant('f0001_07'))) == 3


def test_missing_database_offline_names_data_dir_and_leaves_nothing(tmp_path, monkeypatch):
  def offline(url, timeout=None):
    raise urllib.error.URLError('no network')

  monkeypatch.setattr(download.urllib.request, 'urlopen', offline)
  data_dir = tmp_path / 'emnist'
  with pytest.raises(base.DataError, match='--data_dir.*emnist_all.sqlite'):
    _load(data_dir, only_digits=True)
  assert os.listdir(tmp_path) == []


@pytest.mark.parametrize('truncate', [False, True])
def test_missing_database_is_downloaded_atomically(tmp_path, monkeypatch, truncate):
  _write_database(tmp_path / 'source.sqlite')
  compressed = lzma.compress((tmp_path / 'source.sqlite').read_bytes())
  if truncate:
    compressed = compressed[:len(compressed) // 2]
  urls = []

  def urlopen(url, timeout=None):
    urls.append(url)
    return io.BytesIO(compressed)

  monkeypatch.setattr(download.urllib.request, 'urlopen', urlopen)
  data_dir = tmp_path / 'cache'
  if truncate:
    with pytest.raises(base.DataError, match='could not be downloaded'):
      _load(data_dir, only_digits=True)
    assert not data_dir.exists()
  else:
    assert _load(data_dir, only_digits=True).train.client_ids == ['f0000_02', 'f0001_07']
    assert os.listdir(data_dir) == [emnist.DATABASE]
  assert urls == [emnist.ORIGIN]


def test_corrupt_database_names_the_file(tmp_path):
  (tmp_path / emnist.DATABASE).write_bytes(b'this is not sqlite' * 100)
  with pytest.raises(base.DataError, match='emnist_all.sqlite'):
    _load(tmp_path, only_digits=True)


def test_database_without_the_split_names_the_file(tmp_path):
  path = tmp_path / emnist.DATABASE
  _write_database(path)
  with sqlite3.connect(path) as db:
    db.execute("DELETE FROM client_metadata WHERE split_name = 'digits_only_train'")
  db.close()
  with pytest.raises(base.DataError, match="emnist_all.sqlite.*'digits_only_train'"):
    _load(tmp_path, only_digits=True)
