"""Per-client TFRecord files and the file-backed ClientData that reads them.

A ClientData closing over an in-memory array embeds the array in every serialized TFF
computation; reading each client from its own file keeps a round down to shipping client ids.

On-disk scheme, in `<cache_dir>/<fingerprint>/`: one `NNNNNN.tfrecord` per client (in sorted
client-id order) holding two records, the client's whole image tensor and its int32 label
vector (`tf.io.serialize_tensor`), plus `meta.json` (format, pixel dtype, image shape, client
id -> file and size). A client is thus one read and one parse, not one parse per example
(about half the read cost of per-example records). uint8 images are read as `x / 255`;
float32 images are already in [0, 1]. The directory appears atomically (written beside it, then renamed), so a killed
write is never mistaken for a cache.
"""

import collections
from collections.abc import Mapping
import hashlib
import json
import os
import shutil
import tempfile
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_federated as tff

from datasets import base

# Bump when the file layout or decoding changes: it is part of every fingerprint.
FORMAT_VERSION = 2
_META_FILE = 'meta.json'
# Stored pixel dtype -> (numpy little-endian dtype, tf dtype, divisor to reach [0, 1]).
_PIXEL_CODECS = {
    'uint8': (np.dtype('u1'), tf.uint8, 255.0),
    'float32': (np.dtype('<f4'), tf.float32, 1.0),
}


def fingerprint(spec: Mapping[str, Any]) -> str:
  """sha256 over a canonical JSON of `spec` (everything the content depends on) + format."""
  payload = json.dumps({'format_version': FORMAT_VERSION, 'spec': spec}, sort_keys=True)
  return hashlib.sha256(payload.encode('utf-8')).hexdigest()


def content_sha256(*arrays: np.ndarray) -> str:
  """sha256 over the dtypes, shapes and bytes of `arrays`: a fingerprint part for source data."""
  digest = hashlib.sha256()
  for array in arrays:
    array = np.ascontiguousarray(array)
    digest.update(f'{array.dtype.str}{array.shape}'.encode('utf-8'))
    digest.update(memoryview(array).cast('B'))
  return digest.hexdigest()


def to_unit_float(x: np.ndarray) -> np.ndarray:
  """Converts stored pixels to float32 in [0, 1] exactly as the client files are decoded."""
  codec = _codec_for(x.dtype, what='images')
  return (x.astype(np.float32) / np.float32(codec[2])).astype(np.float32)


def write_client_files(
    *, cache_dir: str, fingerprint: str,  # pylint: disable=redefined-outer-name
    clients: Mapping[str, tuple[np.ndarray, np.ndarray]],
) -> tff.simulation.datasets.ClientData:
  """Writes (or reuses) one TFRecord file per client and returns a ClientData reading them.

  `clients` maps client id -> (x uint8 or float32 [n, H, W, C], y integer [n]); all clients
  share dtype and image shape. If `<cache_dir>/<fingerprint>` exists it is reused as is.
  """
  final_dir = os.path.join(cache_dir, fingerprint)
  if not os.path.isdir(final_dir):
    meta = _check_clients(clients)
    os.makedirs(cache_dir, exist_ok=True)
    temp_dir = tempfile.mkdtemp(prefix=f'.{fingerprint}.', suffix='.partial', dir=cache_dir)
    try:
      _write_all(temp_dir, clients, meta)
      os.rename(temp_dir, final_dir)
    except OSError:
      shutil.rmtree(temp_dir, ignore_errors=True)
      if not os.path.isdir(final_dir):  # Not a lost race with a concurrent writer: re-raise.
        raise
    except BaseException:
      shutil.rmtree(temp_dir, ignore_errors=True)
      raise
  return _open(final_dir, expected_ids=sorted(clients))


def _check_clients(clients: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, Any]:
  """Validates `clients`; returns the meta record (minus files) they share."""
  if not clients:
    raise base.DataError('write_client_files needs at least one client.')
  meta = None
  for client_id, (x, y) in clients.items():
    if not isinstance(client_id, str) or not client_id:
      raise base.DataError(f'client ids must be non-empty strings, got {client_id!r}')
    if not isinstance(x, np.ndarray) or x.ndim != 4:
      raise base.DataError(f'client {client_id!r}: x must be a [n, H, W, C] numpy array, '
                           f'got shape {np.shape(x)}')
    dtype_name = _codec_name(x.dtype, what=f'client {client_id!r} images')
    if dtype_name == 'float32' and not (np.all(x >= 0) and np.all(x <= 1)):  # NaN fails.
      raise base.DataError(f'client {client_id!r}: float32 images must lie in [0, 1].')
    y = np.asarray(y)
    if y.shape != x.shape[:1] or not np.issubdtype(y.dtype, np.integer):
      raise base.DataError(f'client {client_id!r}: y must be integer [{x.shape[0]}], got '
                           f'{y.dtype} {y.shape}')
    if x.shape[0] == 0:
      raise base.DataError(f'client {client_id!r} has no examples.')
    record = {'dtype': dtype_name, 'shape': list(x.shape[1:])}
    if meta is not None and record != meta:
      raise base.DataError(f'client {client_id!r} has images {record}, others {meta}.')
    meta = record
  return meta


def _write_all(directory: str, clients: Mapping[str, tuple[np.ndarray, np.ndarray]],
               meta: dict[str, Any]) -> None:
  """Writes every client's records, then meta.json last (its presence marks completeness)."""
  np_dtype = _PIXEL_CODECS[meta['dtype']][0]
  files = {}
  for index, client_id in enumerate(sorted(clients)):
    x, y = clients[client_id]
    name = f'{index:06d}.tfrecord'
    _write_client(os.path.join(directory, name), x.astype(np_dtype, copy=False), y)
    files[client_id] = {'file': name, 'num_examples': int(x.shape[0])}
  with open(os.path.join(directory, _META_FILE), 'w', encoding='utf-8') as f:
    json.dump({'format_version': FORMAT_VERSION, **meta, 'clients': files}, f)


def _write_client(path: str, x: np.ndarray, y: np.ndarray) -> None:
  """One client's file: its image tensor, then its int32 labels, as two records."""
  with tf.io.TFRecordWriter(path) as writer:
    writer.write(tf.io.serialize_tensor(x).numpy())
    writer.write(tf.io.serialize_tensor(np.asarray(y, np.int32)).numpy())


def _open(directory: str, *, expected_ids: list[str]) -> tff.simulation.datasets.ClientData:
  """Builds the FilePerUserClientData over a finished cache directory, checking its meta."""
  meta_path = os.path.join(directory, _META_FILE)
  try:
    with open(meta_path, encoding='utf-8') as f:
      meta = json.load(f)
    files = {cid: os.path.join(directory, rec['file']) for cid, rec in meta['clients'].items()}
    dtype_name, shape = meta['dtype'], tuple(int(d) for d in meta['shape'])
    ok = meta['format_version'] == FORMAT_VERSION and dtype_name in _PIXEL_CODECS
  except (OSError, ValueError, KeyError, TypeError) as e:
    raise base.DataError(f'client-data cache {directory} is unreadable ({e}); delete it.') from e
  if not ok or sorted(files) != expected_ids or not all(map(os.path.isfile, files.values())):
    raise base.DataError(f'client-data cache {directory} does not match the clients its '
                         'fingerprint names (files missing or different ids); delete it.')
  return tff.simulation.datasets.FilePerUserClientData(
      files, _make_dataset_fn(dtype_name=dtype_name, shape=shape))


def _make_dataset_fn(*, dtype_name: str, shape: tuple[int, int, int]):
  """Returns path -> tf.data.Dataset of OrderedDict(x=float32 [H, W, C] in [0, 1], y=int32).

  Closes over only small constants (dtype and shape), so it serializes cheaply.
  """
  _, tf_dtype, divisor = _PIXEL_CODECS[dtype_name]

  def decode_client(records):
    x = tf.ensure_shape(tf.io.parse_tensor(records[0], tf_dtype), [None, *shape])
    y = tf.ensure_shape(tf.io.parse_tensor(records[1], tf.int32), [None])
    return collections.OrderedDict(x=tf.cast(x, tf.float32) / divisor, y=y)

  def dataset_fn(path) -> tf.data.Dataset:
    # Stays a tf.data pipeline (no eager tensors), so a serialized client dataset is small.
    return tf.data.TFRecordDataset(path).batch(2).map(decode_client).unbatch()

  return dataset_fn


def _codec_name(dtype: np.dtype, *, what: str) -> str:
  """Name of the storage codec for images of `dtype`; DataError if none fits."""
  name = np.dtype(dtype).name
  if name not in _PIXEL_CODECS:
    raise base.DataError(f'{what} must be uint8 (0..255) or float32 in [0, 1], got {name}.')
  return name


def _codec_for(dtype: np.dtype, *, what: str) -> tuple[np.dtype, tf.DType, float]:
  """The (numpy dtype, tf dtype, divisor) codec for images of `dtype`."""
  return _PIXEL_CODECS[_codec_name(dtype, what=what)]
