"""One registry type for every pluggable kind (datasets, models, algorithms, aggregator layers, ...).

A registry maps a name to an entry and knows the flag that chooses among its names, so an unknown
name fails with one clear message that names the flag and lists the choices. Adding a component
is one `register` call (or one entry in the `entries` given at construction).
"""

from typing import Generic, Iterator, Mapping, Optional, TypeVar

T = TypeVar('T')


class UnknownNameError(ValueError):
  """A name that is not registered; the message names the flag and the choices."""


class Registry(Generic[T]):
  """Name -> entry for one kind of component, chosen by flag `--<flag>`."""

  def __init__(self, kind: str, *, flag: str, entries: Optional[Mapping[str, T]] = None):
    self.kind = kind
    self.flag = flag
    self._entries: dict[str, T] = {}
    for name, entry in (entries or {}).items():
      self.register(name, entry)

  def register(self, name: str, entry: T) -> T:
    """Adds `entry` under `name` (a name is registered once); returns the entry."""
    if not isinstance(name, str) or not name:
      raise ValueError(f'{self.kind} names must be non-empty strings, got {name!r}')
    if name in self._entries:
      raise ValueError(f'{self.kind} {name!r} is registered twice')
    self._entries[name] = entry
    return entry

  def get(self, name: str) -> T:
    """The entry of `name`; UnknownNameError naming `--<flag>` and the choices otherwise."""
    if name not in self._entries:
      raise UnknownNameError(
          f'--{self.flag}={name!r} is not a known {self.kind}; choose one of {self.names()}')
    return self._entries[name]

  def names(self) -> list[str]:
    """Registered names, sorted (the flag's choices)."""
    return sorted(self._entries)

  def items(self) -> list[tuple[str, T]]:
    """(name, entry) pairs in registration order."""
    return list(self._entries.items())

  def __contains__(self, name: object) -> bool:
    return name in self._entries

  def __iter__(self) -> Iterator[str]:
    return iter(self.names())

  def __len__(self) -> int:
    return len(self._entries)
