"""One writer per run directory (and one sweep per sweep directory): an exclusive `flock` on
`<dir>/.lock`.

The OS releases the lock when its process dies (even by SIGKILL), so a crashed run never
blocks the next one; a second live process fails at once with "in use by pid N".
"""

import fcntl
import os
from typing import Optional

LOCK_FILE = '.lock'


class RunInUseError(RuntimeError):
  """Another live process holds the run directory."""


class RunLock:
  """An acquired lock; `release()` (or process exit) frees it. `holder` and `name_flag` word the
  refusal (a sweep directory takes the same lock: holder 'sweep', --sweep_name)."""

  def __init__(self, run_dir: str, *, holder: str = 'run', name_flag: str = '--experiment_name'):
    self.path = os.path.join(run_dir, LOCK_FILE)
    self._fd: Optional[int] = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
      fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      pid = os.pread(self._fd, 32, 0).decode('ascii', 'replace').strip() or 'unknown'
      os.close(self._fd)
      self._fd = None
      raise RunInUseError(f'{run_dir} is in use by pid {pid} (another {holder} of it is going); '
                          f'wait for it to finish, or choose another {name_flag}') from None
    os.ftruncate(self._fd, 0)
    os.pwrite(self._fd, f'{os.getpid()}\n'.encode('ascii'), 0)

  def release(self) -> None:
    if self._fd is not None:
      fcntl.flock(self._fd, fcntl.LOCK_UN)
      os.close(self._fd)
      self._fd = None

  def __enter__(self) -> 'RunLock':
    return self

  def __exit__(self, *exc) -> None:
    self.release()
