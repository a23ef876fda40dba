"""Atomic file writes: a reader sees the old file or the new one, never a torn one."""

import json
import os
import tempfile
from typing import Any, Optional


def write_text_atomic(path: str, text: str) -> None:
  """Writes `text` to a temp file beside `path`, fsyncs it, and renames it over `path`."""
  fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path) or '.',
                             prefix=f'.{os.path.basename(path)}.', suffix='.tmp')
  try:
    with os.fdopen(fd, 'w') as f:
      f.write(text)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def write_json_atomic(path: str, value: Any) -> None:
  """Writes `value` as indented JSON, atomically."""
  write_text_atomic(path, json.dumps(value, indent=2) + '\n')


class FileError(ValueError):
  """A file this package wrote is unreadable (the message names it)."""


def read_json(path: str) -> Optional[Any]:
  """The JSON value in `path`, or None if the file is absent; FileError naming it if corrupt."""
  if not os.path.exists(path):
    return None
  try:
    with open(path, encoding='utf-8') as f:
      return json.load(f)
  except (ValueError, UnicodeDecodeError, IsADirectoryError) as e:
    raise FileError(f'{path} is not readable JSON ({e})') from e
