"""Why a given setting does not apply to a run, and what would make it apply, from its rule alone.

A setting's `active(flat)` rule is evaluated on a flat dict that records the keys it reads. The
read settings with a finite domain (their `choices`, or a bool's two values) are then varied,
breadth first, until the rule holds; the fewest changes that make it hold are the answer
("applies to --dp_mechanism=gaussian|laplace; this run is --dp_mechanism=none"). Rules over
numeric settings (`straggler_fraction > 0`) cannot be searched: their setting may declare a
short text (`applies=`), else the message names the settings the rule read and their values.
So every setting with a rule explains itself, and a new one needs nothing more.
"""

import dataclasses
import math
from typing import Any, Callable, Mapping, Optional, Sequence

Flat = Mapping[str, Any]
# A search of a rule changes at most this many settings, and evaluates it at most this often.
_MAX_CHANGES = 3
_MAX_EVALUATIONS = 5000
_EVALUATION_ERRORS = (KeyError, LookupError, TypeError, ValueError)


class _Reading(dict):
  """A flat dict that records, in order, the keys read from it."""

  def __init__(self, values: Flat):
    super().__init__(values)
    self.read: list[str] = []

  def _note(self, key: str) -> None:
    if key not in self.read:
      self.read.append(key)

  def __getitem__(self, key: str) -> Any:
    self._note(key)
    return super().__getitem__(key)

  def get(self, key: str, default: Any = None) -> Any:
    self._note(key)
    return super().get(key, default)


def evaluate(rule: Callable[[Flat], Any], values: Flat) -> tuple[bool, list[str]]:
  """(whether `rule` holds for `values`, the keys it read, in order)."""
  reading = _Reading(values)
  return bool(rule(reading)), reading.read


@dataclasses.dataclass(frozen=True)
class Rule:
  """What explaining one setting needs: its flag, rule and optional declared condition."""
  flag: str
  active: Callable[[Flat], Any]
  applies: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class Reason:
  """Why `flags` do not apply: `condition` ('to --algorithm=fedprox', or a declared text such
  as 'when --straggler_fraction > 0'; None if unknown) and the run's values it reads."""
  flags: tuple[str, ...]
  condition: Optional[str]
  current: str

  def __str__(self) -> str:
    names = ', '.join(f'--{f}' for f in self.flags)
    one = len(self.flags) == 1
    if self.condition is None:
      return f'{names} {"does" if one else "do"} not apply to this run ({self.current})'
    return f'{names} {"applies" if one else "apply"} {self.condition}; this run is {self.current}'


def flag_text(value: Any) -> str:
  """A value as a command line takes it (`--flag=<text>`): true/false, lists `a,b`."""
  if isinstance(value, bool):
    return 'true' if value else 'false'
  if isinstance(value, (list, tuple)):
    return ','.join(flag_text(v) for v in value)
  return str(value)


def _current(keys: Sequence[str], flat: Flat) -> str:
  """'--a=1, --b=x' for the run's values of `keys`; 'without --c' for unset ones."""
  parts = [f'--{k}={flag_text(flat[k])}' for k in keys if flat.get(k) is not None]
  unset = [f'--{k}' for k in keys if flat.get(k) is None]
  if unset:
    parts.append('without ' + ', '.join(unset))
  return ', '.join(parts)


def _search(rule: Rule, domains: Mapping[str, Sequence[Any]],
            flat_with: Callable[[Flat], Flat]) -> list[dict[str, Any]]:
  """The smallest sets of changes to finite-domain settings the rule reads that make it hold
  (breadth first; none if no such set is found)."""
  base = flat_with({})
  _, read = evaluate(rule.active, base)
  frontier, seen, evaluations = [({}, read)], set(), 0
  for _ in range(_MAX_CHANGES):
    solutions, next_frontier = [], []
    for changes, keys in frontier:
      for key in keys:
        if key in changes or key == rule.flag or key not in domains:
          continue
        for value in domains[key]:
          candidate = {**changes, key: value}
          identity = frozenset(candidate.items())
          if value == base[key] or identity in seen or evaluations >= _MAX_EVALUATIONS:
            continue
          seen.add(identity)
          evaluations += 1
          try:
            holds, candidate_read = evaluate(rule.active, flat_with(candidate))
          except _EVALUATION_ERRORS:
            continue  # A combination the resolvers cannot build: not an answer.
          if holds:
            solutions.append(candidate)
          else:
            next_frontier.append((candidate, candidate_read))
    if solutions:
      return solutions
    frontier = next_frontier
  return []


def _condition(solutions: Sequence[Mapping[str, Any]], order: Sequence[str],
               domains: Mapping[str, Sequence[Any]]) -> str:
  """'to --a=x|y with --b=true' (or alternatives joined by ' or ') for the solutions."""
  groups: dict[tuple[str, ...], list[Mapping[str, Any]]] = {}
  for solution in solutions:
    groups.setdefault(tuple(sorted(solution, key=order.index)), []).append(solution)
  alternatives = []
  for keys, group in groups.items():
    values = {k: sorted({s[k] for s in group}, key=list(domains[k]).index) for k in keys}
    if math.prod(len(v) for v in values.values()) == len(group):  # Every combination holds.
      alternatives.append(' with '.join(
          f'--{k}={"|".join(flag_text(v) for v in vs)}' for k, vs in values.items()))
    else:
      alternatives += [' with '.join(f'--{k}={flag_text(s[k])}' for k in keys) for s in group]
  return 'to ' + ' or '.join(alternatives)


def explain(rule: Rule, domains: Mapping[str, Sequence[Any]],
            flat_with: Callable[[Flat], Flat]) -> Reason:
  """Why `rule`'s setting does not apply to the run `flat_with({})`.

  `domains`: the finite values of the settings that have them (declaration order), which the
  search may vary; `flat_with(changes)`: the run's resolved flat settings with `changes`
  applied (settings resolved from them resolved again).
  """
  flat = flat_with({})
  _, read = evaluate(rule.active, flat)
  order = list(flat)  # Declaration order.
  if rule.applies is not None:
    return Reason((rule.flag,), rule.applies, _current(read, flat))
  solutions = _search(rule, domains, flat_with)
  if not solutions:
    return Reason((rule.flag,), None, _current(read, flat))
  keys = read + [k for s in solutions for k in s if k not in read]
  keys = sorted(set(keys), key=order.index)
  return Reason((rule.flag,), _condition(solutions, order, domains), _current(keys, flat))


def grouped(reasons: Sequence[Reason]) -> list[Reason]:
  """Reasons with the same condition and values merged into one naming all their flags."""
  merged: dict[tuple[Optional[str], str], tuple[str, ...]] = {}
  for reason in reasons:
    key = (reason.condition, reason.current)
    merged[key] = merged.get(key, ()) + reason.flags
  return [Reason(names, condition, current) for (condition, current), names in merged.items()]


def refusal(reasons: Sequence[Reason]) -> str:
  """One line naming every flag that does not apply and what would make it apply."""
  return '. '.join(str(r) for r in grouped(reasons))
