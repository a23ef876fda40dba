"""A command's console: a stdout that survives its reader going away, and a quick exit.

When a write to the terminal or pipe fails (EPIPE), output continues into a log file in the
run directory (or is dropped before one exists) and the run goes on; fd 1 is pointed at
/dev/null so the interpreter's final flush cannot fail either.
"""

import atexit
import io
import os
import sys
import threading
from typing import Any, NoReturn, Optional, TextIO


class ResilientStdout(io.TextIOBase):
  """Writes to `stream` until it breaks, then to `fallback_path` (append), quietly."""

  def __init__(self, stream: TextIO):
    super().__init__()
    self._stream: Optional[TextIO] = stream
    self._fallback_path: Optional[str] = None
    self._fallback: Optional[TextIO] = None

  def log_to(self, path: str) -> None:
    """Where output goes once the stream is broken (e.g. `<run_dir>/console.log`)."""
    self._fallback_path = path

  def writable(self) -> bool:
    return True

  def write(self, text: str) -> int:
    if self._stream is not None:
      try:
        self._stream.write(text)
        return len(text)
      except (BrokenPipeError, ValueError, OSError):
        self._break()
    if self._fallback is None and self._fallback_path is not None:
      self._fallback = open(self._fallback_path, 'a', encoding='utf-8')  # pylint: disable=consider-using-with
    if self._fallback is not None:
      self._fallback.write(text)
    return len(text)

  def flush(self) -> None:
    for target in (self._stream, self._fallback):
      if target is not None:
        try:
          target.flush()
        except (BrokenPipeError, ValueError, OSError):
          if target is self._stream:
            self._break()

  def _break(self) -> None:
    """The reader is gone: stop writing to it, now and at interpreter exit."""
    self._stream = None
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)


def install() -> ResilientStdout:
  """Replaces sys.stdout with a ResilientStdout over it; returns it."""
  stdout = ResilientStdout(sys.stdout)
  sys.stdout = stdout
  return stdout


def exit_status(code: Any) -> int:
  """The process status `sys.exit(code)` gives: None 0, an int itself, else 1 (after
  printing `code` to stderr, as Python does)."""
  if code is None:
    return 0
  if isinstance(code, int):
    return code
  print(code, file=sys.stderr)
  return 1


def exit_without_teardown(code: Any) -> NoReturn:
  """Exits as `sys.exit(code)` would, but skips the interpreter's final teardown.

  Non-daemon threads are joined, atexit handlers run and the streams are flushed, as at a
  normal exit; what is skipped is freeing every module and object, whose TF and TFF C++
  destructors took ~1.5 s of every command (measured on `run_experiment`) while all files are
  closed by then.
  """
  status = exit_status(code)
  for thread in threading.enumerate():
    if thread is not threading.main_thread() and not thread.daemon:
      thread.join()
  atexit._run_exitfuncs()  # pylint: disable=protected-access
  for stream in (sys.stdout, sys.stderr):
    try:
      stream.flush()
    except (OSError, ValueError):
      pass
  os._exit(status)  # pylint: disable=protected-access
