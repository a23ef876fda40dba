"""Life cycle of a content-addressed cache directory: create, verify, replace, clean up.

A cache directory `<cache_dir>/<name>` (the name a fingerprint of everything its content depends
on) is filled by a caller's function and checked by another; this module knows only directories,
not what is in them.

It appears atomically: a copy is written as `.<name>.*.partial` beside its place, then renamed
in, so a killed write is never mistaken for a cache; such leftovers (and `.damaged` ones) older
than an hour are removed. A directory that fails its checks is replaced by a fresh copy rather
than failing every later run: under a file lock (`.<name>.lock`), and only if the damaged one is
still in place (same inode), so concurrent callers are safe; and at most a few times per call, so
a disk that keeps failing ends in an error, not a loop. Nothing is fsync'ed: a file lost to a
crash fails the checks like any other damage.
"""

from collections.abc import Callable, Iterator
import contextlib
import fcntl
import logging
import os
import secrets
import shutil
import stat
import tempfile
import time
from typing import TypeVar

from datasets import base

# Temp (`.partial`) and set-aside (`.damaged`) directories untouched this long are abandoned.
_STALE_AGE_S = 3600.0
# Rebuilds of a damaged directory in one call before giving up (a disk that keeps failing).
_MAX_REBUILDS = 2

_T = TypeVar('_T')


class Damaged(Exception):
  """Raised by an `open_dir` callable: the directory fails its own checks (`reason` says how)."""

  def __init__(self, reason: str):
    super().__init__(reason)
    self.reason = reason


def ensure(*, cache_dir: str, name: str, what: str, write_copy: Callable[[], str],
           open_dir: Callable[[str], _T], owns: Callable[[str], bool]) -> _T:
  """Opens `<cache_dir>/<name>`, creating it if absent and rebuilding it if damaged.

  Args:
    cache_dir: Directory holding the cache directories (created if need be).
    name: The cache directory's name: a fingerprint of its content.
    what: How messages call such a directory, e.g. 'client-data cache'.
    write_copy: Writes a complete fresh copy (with `write_temp`) and returns its path; called
      once per creation or rebuild.
    open_dir: Verifies a finished directory and returns what it serves; raises Damaged if it
      fails its checks (anything else it raises, e.g. base.DataError, propagates).
    owns: Whether a file name in the directory is one `write_copy` writes; a damaged directory
      holding any other file is not removed.

  Returns:
    What `open_dir` returns for the directory in place.

  Raises:
    base.DataError: the directory is still damaged after _MAX_REBUILDS rebuilds, or is damaged
      and holds files `owns` disowns (it is not deleted, the message says to).
  """
  final_dir = os.path.join(cache_dir, name)
  _remove_abandoned(cache_dir, name)
  rebuilds = 0
  # Each pass either returns, rebuilds, or finds the directory changed by a concurrent caller
  # (which settles once that caller's copy is in place); the range is only a backstop.
  for _ in range(4 * (_MAX_REBUILDS + 1)):
    if not os.path.isdir(final_dir):
      _create(cache_dir, name, write_copy)
    identity = _identity(final_dir)  # The directory open_dir is about to verify.
    try:
      return open_dir(final_dir)
    except Damaged as e:
      damage = e
    if rebuilds == _MAX_REBUILDS:
      break
    if _replace(cache_dir, name, what=what, write_copy=write_copy, owns=owns,
                reason=damage.reason, identity=identity):
      rebuilds += 1
  raise base.DataError(f'{what} {final_dir} is damaged ({damage.reason}) even after '
                       f'{rebuilds} rebuilds; check the disk under --cache_dir.')


def write_temp(cache_dir: str, name: str, write: Callable[[str], None]) -> str:
  """Runs `write` on a fresh `.<name>.*.partial` directory beside the cache; returns its path.

  The directory is removed again if `write` fails, so a failed write leaves nothing behind.
  """
  os.makedirs(cache_dir, exist_ok=True)
  temp_dir = _make_partial_dir(cache_dir, name)
  try:
    write(temp_dir)
  except BaseException:
    shutil.rmtree(temp_dir, ignore_errors=True)
    raise
  return temp_dir


def _make_partial_dir(cache_dir: str, name: str) -> str:
  """A new empty `.<name>.<random>.partial` directory in `cache_dir`, made with mode 0o777
  less the umask like any directory (`tempfile.mkdtemp`'s 0700 would become the cache's own
  mode once renamed in: a shared cache unreadable to colleagues)."""
  while True:
    path = os.path.join(cache_dir, f'.{name}.{secrets.token_hex(6)}.partial')
    try:
      os.mkdir(path, 0o777)
      return path
    except FileExistsError:
      continue


def _create(cache_dir: str, name: str, write_copy: Callable[[], str]) -> None:
  """Writes the directory beside its place and renames it in; losing that race is fine."""
  temp_dir = write_copy()
  try:
    os.rename(temp_dir, os.path.join(cache_dir, name))
  except OSError:
    shutil.rmtree(temp_dir, ignore_errors=True)
    if not os.path.isdir(os.path.join(cache_dir, name)):  # Not a lost race: re-raise.
      raise


def _replace(cache_dir: str, name: str, *, what: str, write_copy: Callable[[], str],
             owns: Callable[[str], bool], reason: str, identity: tuple[int, int]) -> bool:
  """Replaces the damaged directory (verified as `identity`) with a fresh copy, atomically.

  The copy is written first (outside the lock). Under the lock, the swap happens only if the
  directory in place is still the damaged one (same inode): a concurrent caller may have
  replaced it already, and then this copy is dropped. Readers see the old or the new directory,
  apart from the instant between the two renames. Returns whether a copy was written (False:
  the directory had changed meanwhile, and the caller should simply look again).
  """
  final_dir = os.path.join(cache_dir, name)
  try:
    foreign = sorted(n for n in os.listdir(final_dir) if not owns(n))
  except FileNotFoundError:
    return False  # Moved away meanwhile.
  if _identity(final_dir) != identity:
    return False  # Replaced meanwhile by a concurrent caller.
  if foreign:
    raise base.DataError(
        f'{what} {final_dir} is damaged ({reason}) and also holds files it '
        f'does not write ({", ".join(foreign[:3])}), so it is not removed automatically; '
        'delete it.')
  logging.warning('%s %s is damaged (%s); rebuilding it.', what, final_dir, reason)
  temp_dir = write_copy()
  aside = None
  try:
    with _lock(cache_dir, name):
      if _identity(final_dir) == identity:
        aside = tempfile.mkdtemp(prefix=f'.{name}.', suffix='.damaged', dir=cache_dir)
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
def _lock(cache_dir: str, name: str) -> Iterator[None]:
  """Exclusive flock on `<cache_dir>/.<name>.lock`; best effort where flock fails."""
  with open(os.path.join(cache_dir, f'.{name}.lock'), 'a', encoding='utf-8') as f:
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


def _remove_abandoned(cache_dir: str, name: str) -> None:
  """Removes `.<name>.*.partial` / `.damaged` directories untouched for _STALE_AGE_S.

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
  for entry in names:
    if not (entry.startswith(f'.{name}.') and entry.endswith(('.partial', '.damaged'))):
      continue
    path = os.path.join(cache_dir, entry)
    try:
      st = os.lstat(path)
    except OSError:
      continue
    if stat.S_ISDIR(st.st_mode) and now - st.st_mtime > _STALE_AGE_S:
      shutil.rmtree(path, ignore_errors=True)
