"""Per-client TFRecord files and the file-backed ClientData that reads them.

A ClientData closing over an in-memory array embeds the array in every serialized TFF
computation; reading each client from its own file keeps a round down to shipping client ids.

On-disk scheme, in `<cache_dir>/<fingerprint>/`: one `NNNNNN.tfrecord` per client (in sorted
client-id order) holding two records, the client's whole image tensor and its int32 label
vector (`tf.io.serialize_tensor`), plus `meta.json` (format, pixel dtype, image shape, client
id -> file, example count, byte size and sha256). A client is thus one read and one parse, not
one parse per example (about half the read cost of per-example records). uint8 images are read
as `x / 255`; float32 images are already in [0, 1].

Reliability: the directory appears atomically (written as `.<fingerprint>.*.partial` beside it,
then renamed), so a killed write is never mistaken for a cache; such leftovers older than an hour
are removed. Every reuse checks each file's size and sha256 against meta.json (MNIST's 47 MB in
100 files: 0.04 s from the page cache, 0.09 s cold), so a truncated, changed or missing file, or
a damaged meta.json, is found by the cache itself; the directory is then rebuilt from the arrays
at hand (one logged warning) instead of failing every later run. Nothing is fsync'ed: a file
lost to a crash is caught the same way.
"""

import collections
from collections.abc import Iterator, Mapping
import contextlib
import fcntl
import functools
import hashlib
import json
import logging
import os
import re
import shutil
import stat
import tempfile
import time
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_federated as tff

from datasets import base

# Bump when the file layout or decoding changes: it is part of every fingerprint.
FORMAT_VERSION = 3  # 3: meta.json records each file's size and sha256.
_META_FILE = 'meta.json'
# Names of the client files in a cache directory (`{index:06d}.tfrecord`).
_CLIENT_FILE = re.compile(r'[0-9]{6}\.tfrecord')
_SHA256 = re.compile(r'[0-9a-f]{64}')
# Temp (`.partial`) and set-aside (`.damaged`) directories untouched this long are abandoned.
_STALE_AGE_S = 3600.0
# Rebuilds of a damaged directory in one call before giving up (a disk that keeps failing).
_MAX_REBUILDS = 2
_HASH_CHUNK = 1 << 20
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
  final_dir = os.path.join(cache_dir, fingerprint)
  _remove_abandoned(cache_dir, fingerprint)
  rebuilds = 0
  # Each pass either returns, rebuilds, or finds the directory changed by a concurrent caller
  # (which settles once that caller's copy is in place); the range is only a backstop.
  for _ in range(4 * (_MAX_REBUILDS + 1)):
    if not os.path.isdir(final_dir):
      _create(cache_dir, fingerprint, clients)
    try:
      return _open(final_dir, expected_ids=sorted(clients))
    except _DamagedCache as e:
      damage = e
    if rebuilds == _MAX_REBUILDS:
      break
    if _replace(cache_dir, fingerprint, clients, damage):
      rebuilds += 1
  raise base.DataError(f'client-data cache {final_dir} is damaged ({damage.reason}) even after '
                       f'{rebuilds} rebuilds; check the disk under --cache_dir.')


class _DamagedCache(Exception):
  """A cache directory that fails its own checks; `identity` is the directory verified."""

  def __init__(self, reason: str, identity: tuple[int, int]):
    super().__init__(reason)
    self.reason = reason
    self.identity = identity


def _create(cache_dir: str, fingerprint: str,  # pylint: disable=redefined-outer-name
            clients: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> None:
  """Writes the directory beside its place and renames it in; losing that race is fine."""
  temp_dir = _write_temp(cache_dir, fingerprint, clients)
  try:
    os.rename(temp_dir, os.path.join(cache_dir, fingerprint))
  except OSError:
    shutil.rmtree(temp_dir, ignore_errors=True)
    if not os.path.isdir(os.path.join(cache_dir, fingerprint)):  # Not a lost race: re-raise.
      raise


def _replace(cache_dir: str, fingerprint: str,  # pylint: disable=redefined-outer-name
             clients: Mapping[str, tuple[np.ndarray, np.ndarray]],
             damage: _DamagedCache) -> bool:
  """Replaces the damaged directory `damage` verified with a fresh copy, atomically.

  The copy is written first (outside the lock). Under the lock, the swap happens only if the
  directory in place is still the damaged one (same inode): a concurrent caller may have
  replaced it already, and then this copy is dropped. Readers see the old or the new directory,
  apart from the instant between the two renames. Returns whether a copy was written (False:
  the directory had changed meanwhile, and the caller should simply look again).
  """
  final_dir = os.path.join(cache_dir, fingerprint)
  try:
    foreign = sorted(n for n in os.listdir(final_dir)
                     if n != _META_FILE and not _CLIENT_FILE.fullmatch(n))
  except FileNotFoundError:
    return False  # Moved away meanwhile.
  if _identity(final_dir) != damage.identity:
    return False  # Replaced meanwhile by a concurrent caller.
  if foreign:
    raise base.DataError(
        f'client-data cache {final_dir} is damaged ({damage.reason}) and also holds files it '
        f'does not write ({", ".join(foreign[:3])}), so it is not removed automatically; '
        'delete it.')
  logging.warning('client-data cache %s is damaged (%s); rebuilding it.', final_dir,
                  damage.reason)
  temp_dir = _write_temp(cache_dir, fingerprint, clients)
  aside = None
  try:
    with _lock(cache_dir, fingerprint):
      if _identity(final_dir) == damage.identity:
        aside = tempfile.mkdtemp(prefix=f'.{fingerprint}.', suffix='.damaged', dir=cache_dir)
        try:
          os.rename(final_dir, aside)  # Onto the empty directory just made: atomic.
        except FileNotFoundError:  # Deleted by hand meanwhile: nothing to set aside.
          pass
      try:
        os.rename(temp_dir, final_dir)
      except OSError:
        if not os.path.isdir(final_dir):  # Not a concurrent creator: re-raise.
          raise
  finally:
    shutil.rmtree(temp_dir, ignore_errors=True)  # Gone already if it was renamed in.
    if aside is not None:
      shutil.rmtree(aside, ignore_errors=True)
  return True


@contextlib.contextmanager
def _lock(cache_dir: str,
          fingerprint: str) -> Iterator[None]:  # pylint: disable=redefined-outer-name
  """Exclusive flock on `<cache_dir>/.<fingerprint>.lock`; best effort where flock fails."""
  with open(os.path.join(cache_dir, f'.{fingerprint}.lock'), 'a', encoding='utf-8') as f:
    try:
      fcntl.flock(f.fileno(), fcntl.LOCK_EX)
    except OSError:  # E.g. a file system without locks: the inode check still narrows races.
      pass
    yield  # Closing the file releases the lock.


def _identity(path: str) -> tuple[int, int]:
  """(device, inode) of `path`, or (-1, -1) if it is gone: which directory is in place."""
  try:
    st = os.stat(path)
  except OSError:
    return (-1, -1)
  return (st.st_dev, st.st_ino)


def _remove_abandoned(cache_dir: str,
                      fingerprint: str) -> None:  # pylint: disable=redefined-outer-name
  """Removes `.<fingerprint>.*.partial` / `.damaged` directories untouched for _STALE_AGE_S.

  A killed write leaves a `.partial`; a live writer adds a file at least every few seconds,
  which refreshes the directory's mtime, so a younger one may be in use and is left alone. A
  `.damaged` one is left by a caller killed between setting a damaged cache aside and removing
  it (it keeps the damaged directory's mtime; removing it twice at once is harmless).
  """
  try:
    names = os.listdir(cache_dir)
  except OSError:
    return
  now = time.time()
  for name in names:
    if not (name.startswith(f'.{fingerprint}.') and name.endswith(('.partial', '.damaged'))):
      continue
    path = os.path.join(cache_dir, name)
    try:
      st = os.lstat(path)
    except OSError:
      continue
    if stat.S_ISDIR(st.st_mode) and now - st.st_mtime > _STALE_AGE_S:
      shutil.rmtree(path, ignore_errors=True)


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


def _write_temp(cache_dir: str, fingerprint: str,  # pylint: disable=redefined-outer-name
                clients: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> str:
  """Writes a complete cache into a fresh `.<fingerprint>.*.partial` directory; returns it."""
  meta = _check_clients(clients)
  os.makedirs(cache_dir, exist_ok=True)
  temp_dir = tempfile.mkdtemp(prefix=f'.{fingerprint}.', suffix='.partial', dir=cache_dir)
  try:
    _write_all(temp_dir, clients, meta)
  except BaseException:
    shutil.rmtree(temp_dir, ignore_errors=True)
    raise
  return temp_dir


def _write_all(directory: str, clients: Mapping[str, tuple[np.ndarray, np.ndarray]],
               meta: dict[str, Any]) -> None:
  """Writes every client's records, then meta.json last (its presence marks completeness)."""
  np_dtype = _PIXEL_CODECS[meta['dtype']][0]
  files = {}
  for index, client_id in enumerate(sorted(clients)):
    x, y = clients[client_id]
    name = f'{index:06d}.tfrecord'
    path = os.path.join(directory, name)
    _write_client(path, x.astype(np_dtype, copy=False), y)
    size, sha256 = _size_and_sha256(path)
    files[client_id] = {'file': name, 'num_examples': int(x.shape[0]), 'size': size,
                        'sha256': sha256}
  with open(os.path.join(directory, _META_FILE), 'w', encoding='utf-8') as f:
    json.dump({'format_version': FORMAT_VERSION, **meta, 'clients': files}, f)


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

  Raises _DamagedCache (with what is wrong) if a file is missing, has another size or sha256
  than recorded, or meta.json is missing, unreadable or inconsistent; DataError if the
  directory is not recognisably a cache or holds other client ids than expected.
  """
  identity = _identity(directory)
  damaged = functools.partial(_DamagedCache, identity=identity)
  try:
    with open(os.path.join(directory, _META_FILE), encoding='utf-8') as f:
      meta = json.load(f)
  except FileNotFoundError as e:
    try:
      names = os.listdir(directory)
    except FileNotFoundError:
      raise damaged('the directory vanished') from e  # Swapped by a concurrent caller?
    if not any(_CLIENT_FILE.fullmatch(n) for n in names):
      raise base.DataError(f'client-data cache {directory} has neither {_META_FILE} nor client '
                           'files, so it is no cache this package wrote; delete it.') from e
    raise damaged(f'{_META_FILE} is missing') from e
  except (OSError, ValueError) as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors.
    raise damaged(f'{_META_FILE} is unreadable: {e}') from e
  try:
    dtype_name, shape, records = _parse_meta(meta)
  except (KeyError, TypeError, ValueError) as e:
    raise damaged(f'{_META_FILE} is inconsistent: {e}') from e
  if sorted(records) != expected_ids:
    raise base.DataError(f'client-data cache {directory} does not match the clients its '
                         'fingerprint names (different ids); delete it.')
  paths = {cid: os.path.join(directory, rec['file']) for cid, rec in records.items()}
  for cid, rec in records.items():  # Sizes first: cheap, and finds most damage.
    try:
      size = os.stat(paths[cid]).st_size
    except OSError:
      raise damaged(f'{rec["file"]} is missing') from None
    if size != rec['size']:
      raise damaged(f'{rec["file"]} has {size} bytes, {_META_FILE} records {rec["size"]}')
  for cid, rec in records.items():
    try:
      size, sha256 = _size_and_sha256(paths[cid])
    except OSError as e:
      raise damaged(f'{rec["file"]} is unreadable: {e}') from e
    if (size, sha256) != (rec['size'], rec['sha256']):
      raise damaged(f'{rec["file"]} has changed (sha256 differs from {_META_FILE})')
  return tff.simulation.datasets.FilePerUserClientData(
      paths, _make_dataset_fn(dtype_name=dtype_name, shape=shape))


def _parse_meta(meta: Any) -> tuple[str, tuple[int, int, int], dict[str, dict[str, Any]]]:
  """(dtype name, image shape, client id -> file record) of a meta.json; ValueError if off."""
  if meta['format_version'] != FORMAT_VERSION:
    raise ValueError(f'format_version {meta["format_version"]!r}, expected {FORMAT_VERSION}')
  dtype_name = meta['dtype']
  if dtype_name not in _PIXEL_CODECS:
    raise ValueError(f'unknown dtype {dtype_name!r}')
  shape = tuple(meta['shape'])
  if len(shape) != 3 or not all(isinstance(d, int) and d > 0 for d in shape):
    raise ValueError(f'bad image shape {meta["shape"]!r}')
  records = meta['clients']
  if not isinstance(records, dict) or not records:
    raise ValueError('no clients')
  for cid, rec in records.items():
    if not (_CLIENT_FILE.fullmatch(rec['file']) and isinstance(rec['size'], int)
            and isinstance(rec['num_examples'], int) and _SHA256.fullmatch(rec['sha256'])):
      raise ValueError(f'bad record for client {cid!r}: {rec!r}')
  if len({rec['file'] for rec in records.values()}) != len(records):
    raise ValueError('two clients share a file')
  return dtype_name, shape, records


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
