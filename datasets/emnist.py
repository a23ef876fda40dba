"""TFF's federated EMNIST (LEAF writers as clients) from `<data_dir>/emnist_all.sqlite`.

Train clients are TFF's SqlClientData (already file-backed) mapped to the element format; the
test set is every test example of the split, as numpy. Pixels keep TFF's convention: 1.0 is the
background and 0.0 the ink (the inverse of MNIST).

When the database is missing it is downloaded here, not by TFF: TFF's own download has no
timeout and writes straight to the final name, so an interrupted download would later be read as
a (truncated) database.
"""

import collections
from collections.abc import Mapping
import contextlib
import lzma
import os
import sqlite3
from typing import Any
import urllib.request

import numpy as np
import tensorflow as tf
import tensorflow_federated as tff

from datasets import base
from datasets import download

ORIGIN = 'https://storage.googleapis.com/tff-datasets-public/emnist_all.sqlite.lzma'
DATABASE = 'emnist_all.sqlite'
# TFF's own cache directory, so a database TFF downloaded before is reused.
DEFAULT_DATA_DIR = os.path.join('~', '.tff')
# only_digits -> (train split, test split) in the database.
SPLITS = {True: ('digits_only_train', 'digits_only_test'), False: ('all_train', 'all_test')}
NUM_CLASSES = {True: 10, False: 62}
_PARSE_CHUNK = 8192
_FEATURES = {
    'pixels': tf.io.FixedLenFeature([28, 28], tf.float32),
    'label': tf.io.FixedLenFeature([], tf.int64),
}


def ensure_database(data_dir: str) -> str:
  """Returns the database path in `data_dir`, downloading it (atomically) if missing."""
  path = os.path.join(data_dir, DATABASE)
  if os.path.isfile(path):
    return path
  try:
    with download.created_directory(data_dir):
      download.fetch(url=ORIGIN, dest=path, decompressor=lzma.LZMADecompressor,
                     verify=_verify_download)
  except (download.DownloadError, OSError) as e:
    raise base.DataError(
        f'--data_dir={data_dir}: {DATABASE} is missing and could not be downloaded from '
        f'{ORIGIN} ({e}). Put the database there, or point --data_dir at a directory holding it.'
    ) from e
  return path


def load(*, data_dir: str | None, cache_dir: str, partition: str, num_clients: int,
         partition_params: Mapping[str, Any], seed: int,
         only_digits: bool) -> base.FederatedData:
  """Registry loader: the natural per-writer split (the partition flags and cache_dir are
  unused: the database itself is the file backing)."""
  del cache_dir, partition, num_clients, partition_params, seed
  data_dir = os.path.expanduser(data_dir or DEFAULT_DATA_DIR)
  path = ensure_database(data_dir)
  train_split, test_split = SPLITS[bool(only_digits)]
  for split in (train_split, test_split):
    check_database(path, split=split)
  try:
    train, _ = tff.simulation.datasets.emnist.load_data(only_digits=bool(only_digits),
                                                        cache_dir=data_dir)
  except sqlite3.Error as e:
    raise base.DataError(f'{path}: cannot read the EMNIST database ({e}).') from e
  test_x, test_y = read_split(path, split=test_split)
  return base.FederatedData(train=train.preprocess(_to_element_format), test_x=test_x,
                            test_y=test_y, num_classes=NUM_CLASSES[bool(only_digits)])


def check_database(path: str, *, split: str) -> None:
  """DataError naming `path` unless it is a TFF EMNIST database with clients in `split`."""
  try:
    with _connect_read_only(path) as connection:
      tables = {row[0] for row in connection.execute(
          "SELECT name FROM sqlite_master WHERE type = 'table'")}
      if not {'examples', 'client_metadata'} <= tables:
        raise base.DataError(f'{path}: expected tables examples and client_metadata, found '
                             f'{sorted(tables)}.')
      (num_clients,), = connection.execute(
          'SELECT COUNT(*) FROM client_metadata WHERE split_name = ?', (split,))
      (has_examples,), = connection.execute(
          'SELECT EXISTS(SELECT 1 FROM examples WHERE split_name = ?)', (split,))
  except sqlite3.Error as e:
    raise base.DataError(f'{path}: not a readable EMNIST SQLite database ({e}).') from e
  if not num_clients or not has_examples:
    raise base.DataError(f'{path}: split {split!r} has no clients or no examples.')


def read_split(path: str, *, split: str) -> tuple[np.ndarray, np.ndarray]:
  """All examples of `split` as (float32 [N, 28, 28, 1], int32 [N]), ordered by client."""
  try:
    with _connect_read_only(path) as connection:
      records = [row[0] for row in connection.execute(
          'SELECT serialized_example_proto FROM examples WHERE split_name = ? '
          'ORDER BY client_id, rowid', (split,))]
  except sqlite3.Error as e:
    raise base.DataError(f'{path}: cannot read split {split!r} ({e}).') from e
  xs, ys = [], []
  for start in range(0, len(records), _PARSE_CHUNK):
    try:
      parsed = tf.io.parse_example(records[start:start + _PARSE_CHUNK], _FEATURES)
    except (tf.errors.InvalidArgumentError, ValueError) as e:
      raise base.DataError(f'{path}: split {split!r} holds records that are not EMNIST '
                           f'tf.train.Examples (pixels [784] float, label int64): {e}') from e
    xs.append(parsed['pixels'].numpy())
    ys.append(parsed['label'].numpy())
  x = np.concatenate(xs)[..., np.newaxis].astype(np.float32)
  if not (np.all(x >= 0) and np.all(x <= 1)):
    raise base.DataError(f'{path}: split {split!r} has pixels outside [0, 1].')
  return x, np.concatenate(ys).astype(np.int32)


def _to_element_format(dataset: tf.data.Dataset) -> tf.data.Dataset:
  """TFF's OrderedDict(label, pixels [28, 28]) -> OrderedDict(x [28, 28, 1], y int32)."""
  return dataset.map(
      lambda e: collections.OrderedDict(x=tf.expand_dims(e['pixels'], -1),
                                        y=tf.cast(e['label'], tf.int32)),
      num_parallel_calls=tf.data.AUTOTUNE)


@contextlib.contextmanager
def _connect_read_only(path: str):
  """A read-only sqlite3 connection (a plain connect would create a missing file)."""
  connection = sqlite3.connect(f'file:{urllib.request.pathname2url(path)}?mode=ro', uri=True)
  try:
    yield connection
  finally:
    connection.close()


def _verify_download(path: str) -> None:
  """Rejects a downloaded file that is not an EMNIST database (no checksum is published)."""
  try:
    check_database(path, split=SPLITS[False][0])
  except base.DataError as e:
    raise download.DownloadError(str(e)) from e
