"""Commands run as on a machine that forbids new namespaces (e.g. Ubuntu 24.04's AppArmor
restriction): inside a user namespace whose limits on new user and network namespaces are 0,
so `unshare` fails for real, with ENOSPC, and nothing outside is changed."""

import subprocess

import pytest

_FORBID = ('echo 0 > /proc/sys/user/max_user_namespaces && '
           'echo 0 > /proc/sys/user/max_net_namespaces && exec "$0" "$@"')


def _can_nest() -> bool:
  return subprocess.run(['unshare', '-Ur', 'sh', '-c', _FORBID, 'true'],
                        capture_output=True).returncode == 0


def _forbidden_here() -> bool:
  return subprocess.run(['unshare', '-rn', 'true'], capture_output=True).returncode != 0


def command(argv: list[str]) -> list[str]:
  """`argv`, run where new user and network namespaces are forbidden (skips the test if this
  machine can neither nest such a namespace nor forbids them already)."""
  try:
    if _can_nest():
      return ['unshare', '-Ur', 'sh', '-c', _FORBID, *argv]
    if _forbidden_here():
      return argv
  except FileNotFoundError:
    pass
  pytest.skip('cannot simulate a machine that forbids namespaces here')
