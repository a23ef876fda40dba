"""Reading a client-file cache directory: the file-backed ClientData and the file format.

Each client is one `<id in web-safe base64>.tfrecord` file holding two records, the client's
whole image tensor and its int32 label vector (`tf.io.serialize_tensor`); `meta.json` beside
them describes the directory (`client_files` writes and verifies it). The TF graph derives a
client's path from its id, so reading needs no table of all clients. A change to the format
or its decoding must bump `client_files.FORMAT_VERSION` (part of every cache's fingerprint).
"""

import base64
import collections
from collections.abc import Sequence
import os
import re
from typing import Optional

import numpy as np
import tensorflow as tf

from datasets import base
from datasets import whole_client_data

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


class ClientFiles(whole_client_data.WholeClientData):
  """The clients of one cache directory, each read from its own file.

  The graph computes a client's path from its id (`file_name`), so a serialized client
  dataset holds no table of every client: its size, and a round's cost, do not grow with the
  number of clients. (TFF's FilePerUserClientData embeds its whole id -> path table in every
  client's dataset; at 10^5 clients that made rounds 4x slower, measured.) Also says where
  the files are and holds meta.json's text, so that whoever else reads them (a remote TFF
  worker) can check that it sees this very copy.
  """

  def __init__(self, client_ids: Sequence[str], *, directory: str, meta_text: str,
               examples_fn: whole_client_data.ExamplesFn):
    """`examples_fn(path)`: a client's examples from its file (`make_examples_fn`)."""
    self.directory = directory
    self.meta_path = os.path.join(directory, META_FILE)
    self.meta_text = meta_text
    self.file_pattern = os.path.join(directory, '*' + SUFFIX)
    prefix = directory + os.sep

    def examples_of_client(client_id) -> collections.OrderedDict:
      return examples_fn(tf.strings.join(
          [prefix, tf.io.encode_base64(client_id, pad=False), SUFFIX]))

    super().__init__(client_ids, examples_of_client, where=directory)

  def read_failure(self, error: BaseException) -> Optional[str]:
    """One line naming the cache (and the file) when its directory or a client file that
    `error` names has vanished (e.g. --cache_dir deleted mid-run); else None."""
    named = re.findall(re.escape(self.directory + os.sep) + r'[A-Za-z0-9_-]+' + re.escape(SUFFIX),
                       str(error))
    gone = [path for path in named if not os.path.exists(path)]
    if os.path.isdir(self.directory) and os.path.exists(self.meta_path) and not gone:
      return None
    lost = ('was deleted' if not os.path.isdir(self.directory) else 'lost files')
    which = f' (reading {os.path.basename(gone[0])} failed)' if gone else ''
    return (f'the client-data cache {self.directory} under --cache_dir {lost} during the run'
            f'{which}; run the same command again: the cache is rebuilt and the run resumes from its last checkpoint')


def make_examples_fn(*, dtype_name: str, shape: tuple[int, int, int]):
  """Returns path -> the client's OrderedDict(x=float32 [n, H, W, C] in [0, 1], y=int32 [n]).

  One read of the file's two records and two parses: a client's examples at once. Closes over
  only small constants (dtype and shape), so it serializes cheaply.
  """
  _, tf_dtype, divisor = PIXEL_CODECS[dtype_name]

  def examples_fn(path) -> collections.OrderedDict:
    records = tf.data.TFRecordDataset(path).batch(2).get_single_element()
    x = tf.ensure_shape(tf.io.parse_tensor(records[0], tf_dtype), [None, *shape])
    y = tf.ensure_shape(tf.io.parse_tensor(records[1], tf.int32), [None])
    # An exact division, as `client_files.to_unit_float`'s: inside a TFF computation Grappler
    # would turn `x / divisor` into `x * (1 / divisor)`, which is off by an ulp for some pixels.
    return collections.OrderedDict(x=tf.math.divide_no_nan(tf.cast(x, tf.float32), divisor), y=y)

  return examples_fn


def codec_name(dtype: np.dtype, *, what: str) -> str:
  """Name of the storage codec for images of `dtype`; DataError if none fits."""
  name = np.dtype(dtype).name
  if name not in PIXEL_CODECS:
    raise base.DataError(f'{what} must be uint8 (0..255) or float32 in [0, 1], got {name}.')
  return name


def codec_for(dtype: np.dtype, *, what: str) -> tuple[np.dtype, tf.DType, float]:
  """The (numpy dtype, tf dtype, divisor) codec for images of `dtype`."""
  return PIXEL_CODECS[codec_name(dtype, what=what)]
