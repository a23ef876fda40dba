"""MNIST from the four standard IDX .gz files in --data_dir, downloaded there when missing.

Downloads come from the canonical mirror and are checked against the sha256 of their
*decompressed* IDX content: gzip bytes differ between copies (e.g. the re-compressed offline copy
in shared/data/mnist) while the IDX content is the same 60,000 + 10,000 images everywhere.
"""

from collections.abc import Mapping
import gzip
import hashlib
import os
from typing import Any
import zlib

import numpy as np

from datasets import base
from datasets import centralized
from datasets import download
from datasets import idx

MIRROR = 'https://storage.googleapis.com/cvdf-datasets/mnist/'
DEFAULT_DATA_DIR = os.path.join('~', '.cache', 'tff_experiments', 'data', 'mnist')
TRAIN_IMAGES = 'train-images-idx3-ubyte.gz'
TRAIN_LABELS = 'train-labels-idx1-ubyte.gz'
TEST_IMAGES = 't10k-images-idx3-ubyte.gz'
TEST_LABELS = 't10k-labels-idx1-ubyte.gz'
# sha256 of each file's decompressed IDX content (the official MNIST bytes; the mirror's .gz
# files themselves hash to 440fcabf..., 3552534a..., 8d422c7b..., f7ae60f9...).
IDX_SHA256 = {
    TRAIN_IMAGES: 'ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db',
    TRAIN_LABELS: '65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5',
    TEST_IMAGES: '0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7',
    TEST_LABELS: 'ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2',
}
_IMAGE_SHAPE = (28, 28)
_NUM_CLASSES = 10


def ensure_files(data_dir: str) -> None:
  """Downloads whichever of the four files are missing from `data_dir` (atomically, verified).

  Offline or failed downloads raise DataError naming --data_dir and the missing files; a
  data_dir created for the attempt is removed again if it stays empty.
  """
  missing = [name for name in IDX_SHA256 if not os.path.isfile(os.path.join(data_dir, name))]
  if not missing:
    return
  try:
    with download.created_directory(data_dir):
      for name in missing:
        download.fetch(url=MIRROR + name, dest=os.path.join(data_dir, name),
                       verify=_verifier(name))
  except (download.DownloadError, OSError) as e:
    raise base.DataError(
        f'--data_dir={data_dir}: missing MNIST files {missing}, and they could not be '
        f'downloaded ({e}). Put the four IDX .gz files there, or point --data_dir at a copy.'
    ) from e


def load_arrays(data_dir: str | None) -> centralized.Arrays:
  """MNIST as uint8 [N, 28, 28, 1] images and int32 labels (60,000 train, 10,000 test)."""
  data_dir = os.path.expanduser(data_dir or DEFAULT_DATA_DIR)
  ensure_files(data_dir)
  train_x, train_y = _read_pair(data_dir, TRAIN_IMAGES, TRAIN_LABELS)
  test_x, test_y = _read_pair(data_dir, TEST_IMAGES, TEST_LABELS)
  return centralized.Arrays(name='mnist', train_x=train_x, train_y=train_y, test_x=test_x,
                            test_y=test_y, num_classes=_NUM_CLASSES)


def load(*, data_dir: str | None, cache_dir: str, partition: str, num_clients: int,
         partition_params: Mapping[str, Any], seed: int,
         only_digits: bool) -> base.FederatedData:
  """Registry loader: MNIST split into clients (only_digits is unused: all labels are digits)."""
  del only_digits
  return centralized.federate(load_arrays(data_dir), cache_dir=cache_dir, partition=partition,
                              num_clients=num_clients, partition_params=partition_params,
                              seed=seed)


def _read_pair(data_dir: str, images_name: str,
               labels_name: str) -> tuple[np.ndarray, np.ndarray]:
  """Reads and cross-checks one images/labels file pair."""
  images_path = os.path.join(data_dir, images_name)
  labels_path = os.path.join(data_dir, labels_name)
  images, labels = idx.read(images_path), idx.read(labels_path)
  if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != _IMAGE_SHAPE:
    raise base.DataError(f'{images_path}: expected uint8 images [N, 28, 28], got '
                         f'{images.dtype} {images.shape}.')
  if labels.dtype != np.uint8 or labels.ndim != 1 or len(labels) != len(images):
    raise base.DataError(f'{labels_path}: expected {len(images)} uint8 labels, got '
                         f'{labels.dtype} {labels.shape}.')
  if labels.size and labels.max() >= _NUM_CLASSES:
    raise base.DataError(f'{labels_path}: labels must be 0..9, found {labels.max()}.')
  return images[..., np.newaxis], labels.astype(np.int32)


def _verifier(name: str):
  """Returns a check that a downloaded temp file decompresses to the known IDX content."""

  def verify(path: str) -> None:
    try:
      with gzip.open(path, 'rb') as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    except (OSError, EOFError, zlib.error) as e:
      raise download.DownloadError(f'{name}: downloaded file is not valid gzip ({e}).') from e
    if digest != IDX_SHA256[name]:
      raise download.DownloadError(f'{name}: checksum mismatch (content sha256 {digest}, '
                                   f'expected {IDX_SHA256[name]}).')

  return verify
