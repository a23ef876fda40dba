"""Atomic, time-limited downloads: a file appears under its final name only when complete and
verified, and a failed download leaves neither partial files nor directories it created."""

from collections.abc import Callable, Iterator
import contextlib
import os
import secrets
from typing import Any
import urllib.request

# Seconds allowed for connecting and for each read; an offline machine fails fast, not hangs.
TIMEOUT_S = 20.0
_CHUNK_BYTES = 1 << 20


class DownloadError(OSError):
  """A download failed or its content did not verify; the message says which and why."""


def fetch(*, url: str, dest: str, timeout_s: float = TIMEOUT_S,
          decompressor: Callable[[], Any] | None = None,
          verify: Callable[[str], None] | None = None) -> None:
  """Downloads `url` to `dest` via a temp file beside it, renamed into place when complete.

  `decompressor` (e.g. `lzma.LZMADecompressor`) decodes the stream on the fly; `verify(path)`
  checks the finished temp file and raises DownloadError to reject it. Any failure removes the
  temp file and raises DownloadError.
  """
  directory = os.path.dirname(os.path.abspath(dest))
  fd, temp_path = _create_partial(directory, os.path.basename(dest))
  try:
    decoder = decompressor() if decompressor else None
    with os.fdopen(fd, 'wb') as out, urllib.request.urlopen(url, timeout=timeout_s) as response:
      while chunk := response.read(_CHUNK_BYTES):
        out.write(decoder.decompress(chunk) if decoder else chunk)
      if decoder is not None and not getattr(decoder, 'eof', True):
        raise DownloadError(f'{url}: the compressed stream ended early (truncated download).')
    if verify is not None:
      verify(temp_path)
    os.replace(temp_path, dest)
  except DownloadError:
    _remove_quietly(temp_path)
    raise
  except Exception as e:  # Network, HTTP, decompression and disk errors alike.
    _remove_quietly(temp_path)
    raise DownloadError(f'{url}: {type(e).__name__}: {e}') from e
  except BaseException:
    _remove_quietly(temp_path)
    raise


def _create_partial(directory: str, name: str) -> tuple[int, str]:
  """(fd, path) of a new `.<name>.<random>.partial` file, mode 0o666 less the umask like any
  file (`tempfile.mkstemp`'s 0600 would stay with the download once renamed into place)."""
  while True:
    path = os.path.join(directory, f'.{name}.{secrets.token_hex(6)}.partial')
    try:
      return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), path
    except FileExistsError:
      continue


@contextlib.contextmanager
def created_directory(path: str) -> Iterator[None]:
  """Creates `path` (and missing parents) for downloads; on an exception removes those of them
  that it created and that are still empty, so a failed download leaves no new directories."""
  missing = []
  current = os.path.abspath(path)
  while not os.path.isdir(current):
    missing.append(current)
    parent = os.path.dirname(current)
    if parent == current:
      break
    current = parent
  os.makedirs(path, exist_ok=True)
  try:
    yield
  except BaseException:
    for directory in missing:  # Deepest first.
      try:
        os.rmdir(directory)
      except OSError:
        break  # Not empty (an earlier file completed) or gone: keep it and its parents.
    raise


def _remove_quietly(path: str) -> None:
  """Deletes `path` if it exists."""
  with contextlib.suppress(FileNotFoundError):
    os.remove(path)
