"""What processes hold, read from /proc: a tree's processes, TFF worker binaries, processes
marked by an environment variable, and listening TCP sockets (per network namespace)."""

import glob
import ipaddress
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


def _address(hex_address: str) -> str:
  """/proc/net/tcp's address: 32-bit words in host (little-endian) byte order."""
  words = [bytes.fromhex(hex_address[i:i + 8])[::-1] for i in range(0, len(hex_address), 8)]
  return str(ipaddress.ip_address(b''.join(words)))


def listening_tcp(pid='self') -> dict[int, tuple[str, int]]:
  """{inode: (address, port)} of the listening TCP sockets (IPv4 and IPv6) in the network
  namespace of `pid`."""
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
        address, port = fields[1].split(':')
        found[int(fields[9])] = (_address(address), int(port, 16))
  return found


def listening_sockets(pids) -> dict[tuple[str, int], int]:
  """The TCP sockets that the processes `pids` listen on in this network namespace:
  (address, port) -> pid."""
  owner = {inode: pid for pid in pids for inode in socket_inodes([pid])}
  return {where: owner[inode] for inode, where in listening_tcp('self').items()
          if inode in owner}


def is_loopback(address: str) -> bool:
  """127.0.0.0/8, ::1, or IPv4-mapped 127.x (a dual-stack socket bound to 127.0.0.1)."""
  ip = ipaddress.ip_address(address)
  return ip.is_loopback or bool(getattr(ip, 'ipv4_mapped', None) and ip.ipv4_mapped.is_loopback)


def alive(pid) -> bool:
  """Whether `pid` runs (a zombie waiting to be reaped has exited)."""
  try:
    with open(f'/proc/{pid}/stat') as f:
      return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
  except OSError:
    return False


def processes_with(name: str, value: str) -> dict[int, str]:
  """The live processes whose environment has `name=value` (so those started by a sweep given
  that variable: its Ray instance's, its runs', ...), pid -> command line."""
  found, entry = {}, f'{name}={value}'.encode()
  for pid in filter(str.isdigit, os.listdir('/proc')):
    try:
      with open(f'/proc/{pid}/environ', 'rb') as f:
        if entry not in f.read().split(b'\0'):
          continue
      with open(f'/proc/{pid}/cmdline', 'rb') as f:
        command = f.read().replace(b'\0', b' ').decode('utf-8', 'replace')
    except OSError:
      continue
    if alive(pid):
      found[int(pid)] = command
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
