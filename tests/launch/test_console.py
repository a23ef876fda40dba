"""launch.console's quick exit: what a normal exit guarantees still happens."""

import os
import subprocess
import sys
import textwrap

import pytest

from launch import console

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize('code,status', [(None, 0), (0, 0), (3, 3), ('bad flag', 1)])
def test_exit_status_is_what_sys_exit_gives(code, status):
  assert console.exit_status(code) == status
  assert subprocess.run([sys.executable, '-c', f'import sys; sys.exit({code!r})'],
                        capture_output=True, check=False).returncode == status


def test_exit_without_teardown_joins_threads_runs_atexit_and_flushes(tmp_path):
  script = textwrap.dedent(f'''
      import atexit, sys, threading, time
      from launch import console
      def late_write():
        time.sleep(0.3)
        open({str(tmp_path / 'thread')!r}, 'w').write('done')
      threading.Thread(target=late_write).start()
      atexit.register(lambda: open({str(tmp_path / 'atexit')!r}, 'w').write('ran'))
      sys.stdout.write('unflushed')  # No newline: still in the buffer of a pipe.
      console.exit_without_teardown(7)
  ''')
  run = subprocess.run([sys.executable, '-c', script], cwd=_ROOT, capture_output=True,
                       text=True, check=False)
  assert run.returncode == 7, run.stderr
  assert run.stdout == 'unflushed'
  assert (tmp_path / 'thread').read_text() == 'done'
  assert (tmp_path / 'atexit').read_text() == 'ran'
