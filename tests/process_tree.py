"""What a process tree holds, read from /proc: its processes, TFF worker binaries, and
listening TCP sockets (per network namespace)."""

import glob
import os

_LISTEN = '0A'  # TCP state in /proc/net/tcp*.


def descendants(pid: int) -> list[int]:
  """Every live descendant of `pid` (children, their children, ...)."""
  found, todo = [], [pid]
  while todo:
    parent = todo.pop()
    for children_file in glob.glob(f'/proc/{parent}/task/*/children'):
      try:
        with open(children_file) as f:
          children = [int(c) for c in f.read().split()]
      except FileNotFoundError:
        continue
      found += children
      todo += children
  return found


def worker_binaries(pid: int) -> list[int]:
  """The descendants of `pid` that are TFF's `worker_binary` (by their argv[0])."""
  binaries = []
  for child in descendants(pid):
    try:
      with open(f'/proc/{child}/cmdline', 'rb') as f:
        argv0 = f.read().split(b'\0')[0]
    except FileNotFoundError:
      continue
    if os.path.basename(argv0) == b'worker_binary':
      binaries.append(child)
  return binaries


def listening_tcp(pid='self') -> dict[int, int]:
  """{inode: port} of the listening TCP sockets (IPv4 and IPv6) in the network namespace of
  `pid`."""
  found = {}
  for table in ('tcp', 'tcp6'):
    try:
      with open(f'/proc/{pid}/net/{table}') as f:
        rows = f.read().splitlines()[1:]
    except FileNotFoundError:
      continue
    for row in rows:
      fields = row.split()
      if fields[3] == _LISTEN:
        found[int(fields[9])] = int(fields[1].rsplit(':', 1)[1], 16)
  return found


def socket_inodes(pids) -> set[int]:
  """Inodes of every socket the processes `pids` hold open."""
  inodes = set()
  for pid in pids:
    for fd in glob.glob(f'/proc/{pid}/fd/*'):
      try:
        target = os.readlink(fd)
      except OSError:
        continue
      if target.startswith('socket:['):
        inodes.add(int(target[len('socket:['):-1]))
  return inodes


def argument(pid: int, prefix: str) -> str:
  """The value of the `prefix` argument (e.g. '--socket=') of process `pid`."""
  with open(f'/proc/{pid}/cmdline', 'rb') as f:
    for arg in f.read().decode().split('\0'):
      if arg.startswith(prefix):
        return arg[len(prefix):]
  raise AssertionError(f'process {pid} has no {prefix} argument')
