"""Reading a client-file cache directory: the file-backed ClientData and the file format.

Each client is one `<id in web-safe base64>.tfrecord` file holding two records, the client's
whole image tensor and its int32 label vector (`tf.io.serialize_tensor`); `meta.json` beside
them describes the directory (`client_files` writes and verifies it). The TF graph derives a
client's path from its id, so reading needs no table of all clients. A change to the format
or its decoding must bump `client_files.FORMAT_VERSION` (part of every cache's fingerprint).
"""

import base64
import collections
from collections.abc import Callable, Sequence
import os

import numpy as np
import tensorflow as tf
import tensorflow_federated as tff

from datasets import base

SUFFIX = '.tfrecord'
META_FILE = 'meta.json'
# Stored pixel dtype -> (numpy little-endian dtype, tf dtype, divisor to reach [0, 1]).
PIXEL_CODECS = {
    'uint8': (np.dtype('u1'), tf.uint8, 255.0),
    'float32': (np.dtype('<f4'), tf.float32, 1.0),
}


def file_name(client_id: str) -> str:
  """The client's file name: its id in web-safe base64 without padding, plus `.tfrecord`, so
  the TF graph computes it from the id (`tf.io.encode_base64(id, pad=False)`, the same text)."""
  encoded = base64.urlsafe_b64encode(client_id.encode('utf-8')).decode('ascii').rstrip('=')
  return encoded + SUFFIX


class ClientFiles(tff.simulation.datasets.ClientData):
  """The clients of one cache directory, each read from its own file.

  The graph computes a client's path from its id (`file_name`), so a serialized client
  dataset holds no table of every client: its size, and a round's cost, do not grow with the
  number of clients. (TFF's FilePerUserClientData embeds its whole id -> path table in every
  client's dataset; at 10^5 clients that made rounds 4x slower, measured.) Also says where
  the files are and holds meta.json's text, so that whoever else reads them (a remote TFF
  worker) can check that it sees this very copy.
  """

  def __init__(self, client_ids: Sequence[str], *, directory: str, meta_text: str,
               dataset_fn: Callable[[tf.Tensor], tf.data.Dataset]):
    self._client_ids = sorted(client_ids)
    self._known = frozenset(self._client_ids)
    self.directory = directory
    self.meta_path = os.path.join(directory, META_FILE)
    self.meta_text = meta_text
    self.file_pattern = os.path.join(directory, '*' + SUFFIX)
    prefix = directory + os.sep

    def serializable_dataset_fn(client_id) -> tf.data.Dataset:
      return dataset_fn(tf.strings.join(
          [prefix, tf.io.encode_base64(client_id, pad=False), SUFFIX]))

    self._serializable_dataset_fn = serializable_dataset_fn
    self._element_type_structure = serializable_dataset_fn(
        tf.constant(self._client_ids[0])).element_spec

  @property
  def client_ids(self) -> list[str]:
    return self._client_ids

  @property
  def serializable_dataset_fn(self):
    return self._serializable_dataset_fn

  @property
  def element_type_structure(self):
    return self._element_type_structure

  def create_tf_dataset_for_client(self, client_id: str) -> tf.data.Dataset:
    if client_id not in self._known:
      raise ValueError(f'no client {client_id!r} in {self.directory}')
    return self._serializable_dataset_fn(tf.constant(client_id))


def make_dataset_fn(*, dtype_name: str, shape: tuple[int, int, int]):
  """Returns path -> tf.data.Dataset of OrderedDict(x=float32 [H, W, C] in [0, 1], y=int32).

  Closes over only small constants (dtype and shape), so it serializes cheaply.
  """
  _, tf_dtype, divisor = PIXEL_CODECS[dtype_name]

  def decode_client(records):
    x = tf.ensure_shape(tf.io.parse_tensor(records[0], tf_dtype), [None, *shape])
    y = tf.ensure_shape(tf.io.parse_tensor(records[1], tf.int32), [None])
    return collections.OrderedDict(x=tf.cast(x, tf.float32) / divisor, y=y)

  def dataset_fn(path) -> tf.data.Dataset:
    # Stays a tf.data pipeline (no eager tensors), so a serialized client dataset is small.
    return tf.data.TFRecordDataset(path).batch(2).map(decode_client).unbatch()

  return dataset_fn


def codec_name(dtype: np.dtype, *, what: str) -> str:
  """Name of the storage codec for images of `dtype`; DataError if none fits."""
  name = np.dtype(dtype).name
  if name not in PIXEL_CODECS:
    raise base.DataError(f'{what} must be uint8 (0..255) or float32 in [0, 1], got {name}.')
  return name


def codec_for(dtype: np.dtype, *, what: str) -> tuple[np.dtype, tf.DType, float]:
  """The (numpy dtype, tf dtype, divisor) codec for images of `dtype`."""
  return PIXEL_CODECS[codec_name(dtype, what=what)]
