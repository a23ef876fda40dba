"""Per-client TFRecord files: writing a cache directory and verifying it on reuse.

A ClientData closing over an in-memory array embeds the array in every serialized TFF
computation; reading each client from its own file keeps a round down to shipping client ids
(the reading side, and the file format, are `client_file_reader`'s).

On-disk scheme, in `<cache_dir>/<fingerprint>/`: one `<id in web-safe base64>.tfrecord` per
client (the graph derives the path from the id: no id -> path table travels) holding two
records, the client's whole image tensor and its int32 label vector
(`tf.io.serialize_tensor`), plus `meta.json` (format, pixel dtype, image shape, client
id -> file, example count, byte size and sha256). A client is thus one read and one parse, not
one parse per example (about half the read cost of per-example records). uint8 images are read
as `x / 255`; float32 images are already in [0, 1].

Reliability: the directory's life cycle (atomic creation, replacing a damaged one, removing
abandoned copies) is `cache_dirs`'s. This module supplies its checks: every reuse checks each
file's size and sha256 against meta.json (MNIST's 47 MB in 100 files: 0.04 s from the page
cache, 0.09 s cold), so a truncated, changed or missing file, or a damaged meta.json, is found by
the cache itself; the directory is then rebuilt from the arrays at hand (one logged warning).
"""

from collections.abc import Mapping
import hashlib
import json
import os
import re
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_federated as tff

from datasets import base
from datasets import cache_dirs
from datasets import client_file_reader as reader
from tff_experiments.core import files as core_files

# Bump when the file layout or decoding changes: it is part of every fingerprint.
# 3: meta.json records each file's size and sha256; 4: files named by their client id.
FORMAT_VERSION = 4
# Names of the client files in a cache directory: `reader.file_name(client_id)`.
_CLIENT_FILE = re.compile(r'[A-Za-z0-9_-]+\.tfrecord')
_MAX_NAME_BYTES = 255  # Of a file name, on common filesystems.
_SHA256 = re.compile(r'[0-9a-f]{64}')
_HASH_CHUNK = 1 << 20


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
  codec = reader.codec_for(x.dtype, what='images')
  return (x.astype(np.float32) / np.float32(codec[2])).astype(np.float32)


def write_client_files(
    *, cache_dir: str, fingerprint: str,  # pylint: disable=redefined-outer-name
    clients: Mapping[str, tuple[np.ndarray, np.ndarray]],
) -> tff.simulation.datasets.ClientData:
  """Writes (or reuses) one TFRecord file per client and returns a ClientData reading them.

  `clients` maps client id -> (x uint8 or float32 [n, H, W, C], y integer [n]); all clients
  share dtype and image shape. An existing `<cache_dir>/<fingerprint>` is reused when every file
  matches the size and sha256 in its meta.json (the fingerprint must capture the content: the
  arrays are not compared). A damaged one (file missing, truncated or changed; meta.json
  missing, unreadable or inconsistent) is rebuilt from `clients`: a fresh copy is written beside
  it, the damaged one is renamed aside, the copy renamed in, the old one removed, and one
  warning is logged. Concurrent callers with the same fingerprint are safe: a lost race to
  create the directory is fine, and replacing a damaged one is done under a file lock
  (`.<fingerprint>.lock`), by whoever finds that same damaged directory still in place.

  Raises:
    base.DataError: bad `clients`; a cache of other client ids under this fingerprint; or a
      directory that is not recognisably this module's (no meta.json and no client file, or
      damaged and holding files it does not write): it is not deleted, the message says to.
  """
  return cache_dirs.ensure(
      cache_dir=cache_dir, name=fingerprint, what='client-data cache',
      # Lambdas: `_write_temp` is looked up when a copy is due, and `clients` is sorted only
      # when a directory is opened (a copy's writer has rejected bad client ids by then).
      write_copy=lambda: _write_temp(cache_dir, fingerprint, clients),
      open_dir=lambda directory: _open(directory, expected_ids=sorted(clients)),
      owns=lambda name: name == reader.META_FILE or bool(_CLIENT_FILE.fullmatch(name)))


def _check_clients(clients: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, Any]:
  """Validates `clients`; returns the meta record (minus files) they share."""
  if not clients:
    raise base.DataError('write_client_files needs at least one client.')
  meta = None
  for client_id, (x, y) in clients.items():
    if not isinstance(client_id, str) or not client_id:
      raise base.DataError(f'client ids must be non-empty strings, got {client_id!r}')
    if len(reader.file_name(client_id)) > _MAX_NAME_BYTES:
      raise base.DataError(f'client id {client_id[:40]!r}... is too long for a file name '
                           f'(at most {(_MAX_NAME_BYTES - len(reader.SUFFIX)) * 3 // 4} bytes).')
    if not isinstance(x, np.ndarray) or x.ndim != 4:
      raise base.DataError(f'client {client_id!r}: x must be a [n, H, W, C] numpy array, '
                           f'got shape {np.shape(x)}')
    dtype_name = reader.codec_name(x.dtype, what=f'client {client_id!r} images')
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


def _write_temp(cache_dir: str, fingerprint: str,  # pylint: disable=redefined-outer-name
                clients: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> str:
  """Checks `clients` (before touching the disk), writes a complete cache beside its place.

  Returns the fresh `.<fingerprint>.*.partial` directory, which is removed if writing fails.
  """
  meta = _check_clients(clients)
  return cache_dirs.write_temp(cache_dir, fingerprint,
                               lambda directory: _write_all(directory, clients, meta))


def _write_all(directory: str, clients: Mapping[str, tuple[np.ndarray, np.ndarray]],
               meta: dict[str, Any]) -> None:
  """Writes every client's records, then meta.json last (its presence marks completeness)."""
  np_dtype = reader.PIXEL_CODECS[meta['dtype']][0]
  files = {}
  for client_id in sorted(clients):
    x, y = clients[client_id]
    name = reader.file_name(client_id)
    path = os.path.join(directory, name)
    _write_client(path, x.astype(np_dtype, copy=False), y)
    size, sha256 = _size_and_sha256(path)
    files[client_id] = {'file': name, 'num_examples': int(x.shape[0]), 'size': size,
                        'sha256': sha256}
  with open(os.path.join(directory, reader.META_FILE), 'w', encoding='utf-8') as f:
    f.write(core_files.json_text({'format_version': FORMAT_VERSION, **meta, 'clients': files},
                                 indent=None))


def _size_and_sha256(path: str) -> tuple[int, str]:
  """Byte size and hex sha256 of the file at `path`, read in 1 MiB chunks."""
  digest = hashlib.sha256()
  buffer = bytearray(_HASH_CHUNK)
  view = memoryview(buffer)
  size = 0
  with open(path, 'rb', buffering=0) as f:
    while n := f.readinto(buffer):
      digest.update(view[:n])
      size += n
  return size, digest.hexdigest()


def _write_client(path: str, x: np.ndarray, y: np.ndarray) -> None:
  """One client's file: its image tensor, then its int32 labels, as two records."""
  with tf.io.TFRecordWriter(path) as writer:
    writer.write(tf.io.serialize_tensor(x).numpy())
    writer.write(tf.io.serialize_tensor(np.asarray(y, np.int32)).numpy())


def _open(directory: str, *, expected_ids: list[str]) -> tff.simulation.datasets.ClientData:
  """Verifies a finished cache directory against its meta.json and builds the ClientData.

  Raises cache_dirs.Damaged (with what is wrong) if a file is missing, has another size or
  sha256 than recorded, or meta.json is missing, unreadable or inconsistent; DataError if the
  directory is not recognisably a cache or holds other client ids than expected.
  """
  try:
    with open(os.path.join(directory, reader.META_FILE), encoding='utf-8') as f:
      meta_text = f.read()
    meta = json.loads(meta_text)
  except FileNotFoundError as e:
    try:
      names = os.listdir(directory)
    except FileNotFoundError:
      raise cache_dirs.Damaged('the directory vanished') from e  # Swapped by a concurrent caller?
    if not any(_CLIENT_FILE.fullmatch(n) for n in names):
      raise base.DataError(f'client-data cache {directory} has neither {reader.META_FILE} nor '
                           'client files, so it is no cache this package wrote; delete it.') from e
    raise cache_dirs.Damaged(f'{reader.META_FILE} is missing') from e
  except (OSError, ValueError) as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors.
    raise cache_dirs.Damaged(f'{reader.META_FILE} is unreadable: {e}') from e
  try:
    dtype_name, shape, records = _parse_meta(meta)
  except (KeyError, TypeError, ValueError) as e:
    raise cache_dirs.Damaged(f'{reader.META_FILE} is inconsistent: {e}') from e
  if sorted(records) != expected_ids:
    raise base.DataError(f'client-data cache {directory} does not match the clients its '
                         'fingerprint names (different ids); delete it.')
  paths = {cid: os.path.join(directory, rec['file']) for cid, rec in records.items()}
  for cid, rec in records.items():  # Sizes first: cheap, and finds most damage.
    try:
      size = os.stat(paths[cid]).st_size
    except OSError:
      raise cache_dirs.Damaged(f'{rec["file"]} is missing') from None
    if size != rec['size']:
      raise cache_dirs.Damaged(
          f'{rec["file"]} has {size} bytes, {reader.META_FILE} records {rec["size"]}')
  for cid, rec in records.items():
    try:
      size, sha256 = _size_and_sha256(paths[cid])
    except OSError as e:
      raise cache_dirs.Damaged(f'{rec["file"]} is unreadable: {e}') from e
    if (size, sha256) != (rec['size'], rec['sha256']):
      raise cache_dirs.Damaged(
          f'{rec["file"]} has changed (sha256 differs from {reader.META_FILE})')
  return reader.ClientFiles(records, directory=directory, meta_text=meta_text,
                            examples_fn=reader.make_examples_fn(dtype_name=dtype_name, shape=shape))


def _parse_meta(meta: Any) -> tuple[str, tuple[int, int, int], dict[str, dict[str, Any]]]:
  """(dtype name, image shape, client id -> file record) of a meta.json; ValueError if off."""
  if meta['format_version'] != FORMAT_VERSION:
    raise ValueError(f'format_version {meta["format_version"]!r}, expected {FORMAT_VERSION}')
  dtype_name = meta['dtype']
  if dtype_name not in reader.PIXEL_CODECS:
    raise ValueError(f'unknown dtype {dtype_name!r}')
  shape = tuple(meta['shape'])
  if len(shape) != 3 or not all(isinstance(d, int) and d > 0 for d in shape):
    raise ValueError(f'bad image shape {meta["shape"]!r}')
  records = meta['clients']
  if not isinstance(records, dict) or not records:
    raise ValueError('no clients')
  for cid, rec in records.items():
    if not (rec['file'] == reader.file_name(cid) and isinstance(rec['size'], int)
            and isinstance(rec['num_examples'], int) and _SHA256.fullmatch(rec['sha256'])):
      raise ValueError(f'bad record for client {cid!r}: {rec!r}')
  return dtype_name, shape, records


