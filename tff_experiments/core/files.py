"""Atomic file writes: a reader sees the old file or the new one, never a torn one."""

import json
import math
import os
import secrets
from typing import Any, Optional

import numpy as np


def write_text_atomic(path: str, text: str) -> None:
  """Writes `text` to a temp file beside `path`, fsyncs it, and renames it over `path`.

  The temp file is created with mode 0o666 and the kernel applies the umask (and a directory's
  default ACL), as for any `open(path, 'w')`: results are as readable as the user's other files
  (`tempfile.mkstemp` would make them 0600, unreadable to colleagues on a shared drive).
  """
  fd, tmp = _create_beside(path)
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


def finite_or_none(value: Any) -> Any:
  """`value` with every NaN or infinite float replaced by None (recursively through mappings,
  lists and tuples; numpy scalars and arrays become Python values), so it has a strict JSON
  form. null then means "no finite value": e.g. the accuracy of a diverged model, or epsilon
  without noise, where the writer adds a field saying which (`final_epsilon_unbounded`)."""
  if isinstance(value, dict):
    return {key: finite_or_none(item) for key, item in value.items()}
  if isinstance(value, (list, tuple)):
    return [finite_or_none(item) for item in value]
  if isinstance(value, np.ndarray):
    return finite_or_none(value.tolist())
  if isinstance(value, np.generic):
    value = value.item()
  if isinstance(value, float) and not math.isfinite(value):
    return None
  return value


def json_text(value: Any, *, indent: Optional[int] = 2) -> str:
  """Strict JSON (RFC 8259: no NaN or Infinity tokens, which other tools reject) of `value`,
  non-finite floats as null (`finite_or_none`). Every JSON file the package writes is this."""
  return json.dumps(finite_or_none(value), indent=indent, allow_nan=False)


def _create_beside(path: str) -> tuple[int, str]:
  """(fd, name) of a new, exclusively created `.<name>.<random>.tmp` beside `path`."""
  directory, name = os.path.split(path)
  while True:
    tmp = os.path.join(directory or '.', f'.{name}.{secrets.token_hex(6)}.tmp')
    try:
      return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
    except FileExistsError:
      continue


def write_json_atomic(path: str, value: Any) -> None:
  """Writes `value` as indented strict JSON (`json_text`), atomically."""
  write_text_atomic(path, json_text(value) + '\n')


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
