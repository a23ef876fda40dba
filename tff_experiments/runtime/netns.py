"""A private network namespace for this process: a loopback of its own, no other interface.

A socket listening in it (even on "every interface") is reachable from no other namespace:
not from the network, not from the host's loopback. Created as `unshare -n` (privileged) or
`unshare -rn` (an unprivileged user namespace owning the network namespace) would, with
loopback brought up by an ioctl, so no tool is needed.
"""

import ctypes
import fcntl
import os
import socket
import struct
from typing import Optional

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1
_LIBC = ctypes.CDLL(None, use_errno=True)

# Tried in order: a privileged process keeps its own user namespace (and so its access to
# every file it can read now); otherwise a user namespace of our own owns the network one.
WAYS = (('network namespace', CLONE_NEWNET),
        ('user and network namespace', CLONE_NEWUSER | CLONE_NEWNET))


def _unshare(flags: int) -> None:
  if _LIBC.unshare(flags) != 0:
    code = ctypes.get_errno()
    raise OSError(code, os.strerror(code), 'unshare')


def _write(path: str, text: str) -> None:
  with open(path, 'w', encoding='ascii') as f:
    f.write(text)


def _map_ids(uid: int, gid: int) -> None:
  """Maps our user and group ids to themselves in a new user namespace (as `unshare -r`
  maps them to root), so that files and processes show the same owners inside."""
  _write('/proc/self/uid_map', f'{uid} {uid} 1\n')
  _write('/proc/self/setgroups', 'deny')  # Required before an unprivileged gid_map.
  _write('/proc/self/gid_map', f'{gid} {gid} 1\n')


def _bring_loopback_up() -> None:
  with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
    request = struct.pack('16sH14x', b'lo', 0)
    flags, = struct.unpack_from('H', fcntl.ioctl(sock, _SIOCGIFFLAGS, request), 16)
    fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack('16sH14x', b'lo', flags | _IFF_UP))


def enter(flags: int) -> None:
  """Moves this single-threaded process into new namespaces (`flags`, one of WAYS) with
  loopback up; OSError if the machine does not allow it (the process may then be half-way:
  call it in a child first, as `first_possible_way` does)."""
  uid, gid = os.getuid(), os.getgid()
  _unshare(flags)
  if flags & CLONE_NEWUSER:
    _map_ids(uid, gid)
  _bring_loopback_up()


def _try_in_child(flags: int) -> Optional[str]:
  """Runs `enter(flags)` in a forked child: None if it worked, else why not."""
  read_end, write_end = os.pipe()
  pid = os.fork()
  if pid == 0:  # The child: report and exit without running any Python cleanup.
    os.close(read_end)
    try:
      enter(flags)
      message = b''
    except OSError as e:
      message = (e.strerror if e.filename is None else f'{e.filename}: {e.strerror}').encode()
    except BaseException as e:  # pylint: disable=broad-except
      message = (str(e) or type(e).__name__).encode()
    os.write(write_end, message)
    os._exit(0)  # pylint: disable=protected-access
  os.close(write_end)
  with os.fdopen(read_end, 'rb') as pipe:
    message = pipe.read().decode(errors='replace')
  os.waitpid(pid, 0)
  return message or None


def first_possible_way() -> tuple[Optional[int], str]:
  """(flags, name) of the first of WAYS this machine allows, or (None, why none is allowed).
  Each way is tried in a throw-away child."""
  failures = []
  for name, flags in WAYS:
    failure = _try_in_child(flags)
    if failure is None:
      return flags, name
    failures.append(failure)
  return None, failures[-1]
