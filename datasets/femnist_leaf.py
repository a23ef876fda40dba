"""LEAF FEMNIST (writers as clients) from LEAF's JSON output in --data_dir/{train,test}/*.json.

Each JSON file holds `users`, `num_samples` and `user_data` {writer: {"x": [[784 floats]],
"y": [int]}}; 62 classes (digits 0-9, upper case 10-35, lower case 36-61). Clients are the
writers with train data; the test set is the test examples of those writers. Pixels keep LEAF's
convention: 1.0 is the background (the inverse of MNIST). LEAF pixels are multiples of 1/255, so
they are stored as uint8 (exact); other values are stored as float32.
"""

from collections.abc import Mapping
import glob
import json
import os
from typing import Any

import numpy as np

from datasets import base
from datasets import client_files

NUM_CLASSES = 62
_DIGIT_CLASSES = 10
_PIXELS = 784
_IMAGE_SHAPE = (28, 28, 1)

# writer -> (x float64 [n, 784], y int64 [n])
_Writers = dict[str, tuple[np.ndarray, np.ndarray]]


def read_split_dir(directory: str) -> _Writers:
  """Reads every `*.json` in `directory` into writer -> (x, y); DataError names the bad file."""
  if not os.path.isdir(directory):
    raise base.DataError(f'--data_dir: {directory} is not a directory; expected LEAF FEMNIST '
                         'output with train/ and test/ subdirectories of JSON files.')
  paths = sorted(glob.glob(os.path.join(directory, '*.json')))
  if not paths:
    raise base.DataError(f'--data_dir: no *.json files in {directory}.')
  writers, origin = {}, {}
  for path in paths:
    for writer, data in _read_file(path).items():
      if writer in writers:
        raise base.DataError(f'{path}: writer {writer!r} also appears in {origin[writer]}; '
                             'expected each writer once per split (mixed LEAF outputs?).')
      writers[writer], origin[writer] = data, path
  return writers


def load(*, data_dir: str | None, cache_dir: str, partition: str, num_clients: int,
         partition_params: Mapping[str, Any], seed: int,
         only_digits: bool) -> base.FederatedData:
  """Registry loader: the natural per-writer split, written to per-writer files in cache_dir
  (the partition flags are unused)."""
  del partition, num_clients, partition_params, seed
  if not data_dir:
    raise base.DataError('--data_dir is required for femnist_leaf: a LEAF FEMNIST directory '
                         'with train/ and test/ subdirectories of JSON files.')
  train = _keep_labels(read_split_dir(os.path.join(data_dir, 'train')), only_digits=only_digits)
  if not train:
    raise base.DataError(f'--data_dir={data_dir}: no train examples (only_digits={only_digits}).')
  test = _keep_labels(read_split_dir(os.path.join(data_dir, 'test')), only_digits=only_digits)
  writers = sorted(train)
  test_writers = [w for w in writers if w in test]
  if not test_writers:
    raise base.DataError(f'--data_dir={data_dir}: none of the {len(writers)} train writers has '
                         'test examples.')
  dtype = _storage_dtype([train[w][0] for w in writers] + [test[w][0] for w in test_writers])
  clients = {w: (_to_images(train[w][0], dtype), train[w][1].astype(np.int32)) for w in writers}
  spec = {
      'dataset': 'femnist_leaf',
      'only_digits': bool(only_digits),
      'source_sha256': client_files.content_sha256(
          np.array(writers), *[a for w in writers for a in clients[w]]),
  }
  test_x = np.concatenate([_to_images(test[w][0], dtype) for w in test_writers])
  test_y = np.concatenate([test[w][1] for w in test_writers]).astype(np.int32)
  return base.FederatedData(
      train=client_files.write_client_files(
          cache_dir=cache_dir, fingerprint=client_files.fingerprint(spec), clients=clients),
      test_x=client_files.to_unit_float(test_x), test_y=test_y,
      num_classes=_DIGIT_CLASSES if only_digits else NUM_CLASSES)


def _read_file(path: str) -> _Writers:
  """One LEAF JSON file -> writer -> (x, y), validated."""
  try:
    with open(path, encoding='utf-8') as f:
      blob = json.load(f)
    users, user_data = blob['users'], blob['user_data']
    num_samples = blob.get('num_samples', [None] * len(users))
    writers = {}
    for writer, expected in zip(users, num_samples, strict=True):
      x = np.asarray(user_data[writer]['x'], dtype=np.float64)
      y = np.asarray(user_data[writer]['y'])
      if x.ndim == 1 and x.size == 0:
        x = x.reshape(0, _PIXELS)
      if x.ndim != 2 or x.shape[1] != _PIXELS or y.shape != x.shape[:1]:
        raise ValueError(f'writer {writer!r}: x must be [n, {_PIXELS}] and y [n], got x '
                         f'{x.shape} and y {y.shape}')
      if y.size and (not np.issubdtype(y.dtype, np.integer) or y.min() < 0
                     or y.max() >= NUM_CLASSES):
        raise ValueError(f'writer {writer!r}: labels must be integers 0..{NUM_CLASSES - 1}')
      if not (np.all(x >= 0) and np.all(x <= 1)):
        raise ValueError(f'writer {writer!r}: pixels must lie in [0, 1]')
      if expected is not None and expected != len(y):
        raise ValueError(f'writer {writer!r}: num_samples says {expected}, found {len(y)}')
      writers[writer] = (x, y.astype(np.int64))
  except (OSError, ValueError, KeyError, TypeError) as e:  # JSONDecodeError is a ValueError.
    raise base.DataError(f'{path}: not a LEAF FEMNIST JSON file ({type(e).__name__}: {e}); '
                         'expected keys users, num_samples, user_data {writer: {x, y}}.') from e
  return writers


def _keep_labels(writers: _Writers, *, only_digits: bool) -> _Writers:
  """With only_digits, keeps labels 0..9 and drops writers left without examples."""
  if not only_digits:
    return {w: d for w, d in writers.items() if len(d[1])}
  kept = {w: (x[y < _DIGIT_CLASSES], y[y < _DIGIT_CLASSES]) for w, (x, y) in writers.items()}
  return {w: d for w, d in kept.items() if len(d[1])}


def _storage_dtype(pixel_arrays: list[np.ndarray]) -> np.dtype:
  """uint8 if every pixel is a multiple of 1/255 (exact as bytes), else float32."""
  exact = all(np.allclose(p * 255, np.round(p * 255), rtol=0, atol=1e-4) for p in pixel_arrays)
  return np.dtype(np.uint8) if exact else np.dtype(np.float32)


def _to_images(pixels: np.ndarray, dtype: np.dtype) -> np.ndarray:
  """[n, 784] floats in [0, 1] -> [n, 28, 28, 1] of the storage dtype."""
  if dtype == np.uint8:
    pixels = np.round(pixels * 255)
  return pixels.astype(dtype).reshape(-1, *_IMAGE_SHAPE)
