"""Reader for the IDX format of the MNIST distribution (optionally gzip-compressed).

Format: two zero bytes, a dtype code byte, a rank byte, one big-endian uint32 per dimension,
then the values big-endian in C order.
"""

import gzip
import zlib

import numpy as np

from datasets import base

# IDX dtype code -> big-endian numpy dtype.
_DTYPES = {
    0x08: np.dtype('>u1'),
    0x09: np.dtype('>i1'),
    0x0B: np.dtype('>i2'),
    0x0C: np.dtype('>i4'),
    0x0D: np.dtype('>f4'),
    0x0E: np.dtype('>f8'),
}


def read(path: str) -> np.ndarray:
  """Reads an IDX file (gzip if the name ends in .gz) into a native-endian numpy array.

  A truncated, corrupt or malformed file raises DataError naming the file.
  """
  try:
    if path.endswith('.gz'):
      with gzip.open(path, 'rb') as f:
        data = f.read()
    else:
      with open(path, 'rb') as f:
        data = f.read()
  except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError.
    raise base.DataError(f'{path}: cannot read ({type(e).__name__}: {e}); expected a '
                         'gzip-compressed IDX file.') from e
  return parse(data, name=path)


def parse(data: bytes, *, name: str) -> np.ndarray:
  """Parses IDX bytes; `name` (the file) is quoted in errors."""
  if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
    raise base.DataError(f'{name}: not an IDX file (bad magic number {data[:4].hex()!r}).')
  dtype, rank = _DTYPES[data[2]], data[3]
  header = 4 + 4 * rank
  if len(data) < header:
    raise base.DataError(f'{name}: truncated IDX header.')
  shape = tuple(int(d) for d in np.frombuffer(data, dtype='>u4', count=rank, offset=4))
  expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
  if len(data) != expected:
    raise base.DataError(f'{name}: IDX header promises shape {shape} ({expected} bytes) but '
                         f'the file has {len(data)} bytes (truncated or corrupt).')
  values = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
  return values.astype(dtype.newbyteorder('='))
