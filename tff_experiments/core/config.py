"""Sectioned, frozen configs whose fields carry their own flag help, checks and activity.

A setting is declared once, as a dataclass field made by `setting(...)`: default, help text,
value checks, choices (from a registry), when it is active, how a `None` default resolves from
other settings, and whether it names a location rather than what a run computes. From that one
declaration come the absl flag (`flag_binding`), validation with messages naming the flag,
the active-only `hparams.json`, run identity for resume, the default run name, and the refusal
of a setting given explicitly that the run's other settings make inactive (`unapplied`).

Everything between flags and config travels as a flat dict keyed by flag name (`flag_prefix` of
the section + field name), which is also the layout of `hparams.json`.
"""

import dataclasses
import hashlib
import json
import math
import numbers
import os
import typing
from typing import Any, Callable, ClassVar, Collection, Mapping, Optional, Sequence, Union

from tff_experiments.core import applicability

Flat = dict[str, Any]
Check = tuple[Callable[[Any], bool], str]
# Checks many settings share.
POSITIVE: Check = (lambda v: v > 0, 'must be > 0')
AT_LEAST_1: Check = (lambda v: v >= 1, 'must be >= 1')


class ConfigError(ValueError):
  """An invalid setting or combination; the message names the flag(s)."""


@dataclasses.dataclass(frozen=True)
class Setting:
  """What a field declares besides its default (see `setting`)."""
  help: str
  checks: tuple[Check, ...] = ()
  choices: Optional[Callable[[], Sequence[str]]] = None
  active: Optional[Callable[[Flat], bool]] = None
  resolve: Optional[Callable[[Flat], Any]] = None
  location: bool = False
  path: bool = False
  flag: Optional[str] = None
  completed: bool = False
  applies: Optional[str] = None


def setting(default: Any, *, help: str, checks: Sequence[Check] = (),  # pylint: disable=redefined-builtin
            choices: Optional[Callable[[], Sequence[str]]] = None,
            active: Optional[Callable[[Flat], bool]] = None,
            resolve: Optional[Callable[[Flat], Any]] = None,
            location: bool = False, path: bool = False, flag: Optional[str] = None,
            completed: bool = False, applies: Optional[str] = None) -> Any:
  """A config field. `active(flat)` says whether the setting matters for this run (inactive
  ones stay out of hparams.json and run identity); `resolve(flat)` replaces a `None` value from
  settings declared before it; `location` marks where or how a run executes (paths, timeouts)
  rather than what it computes, so it is not part of the run's identity;
  `path` values are user-expanded and made absolute; a `completed` setting left None by the
  flags is filled in once the data is loaded (e.g. a calibrated noise multiplier) and recorded
  then, so a None is not compared with a saved value. `applies` completes "--flag applies ..."
  (e.g. 'when --straggler_fraction > 0') where the refusal of an inactive flag cannot find it
  from `active` alone (see `applicability`: it searches the choices of the settings read)."""
  return dataclasses.field(default=default, metadata={'setting': Setting(
      help=help, checks=tuple(checks), choices=choices, active=active, resolve=resolve,
      location=location, path=path, flag=flag, completed=completed, applies=applies)})


@dataclasses.dataclass(frozen=True)
class CrossCheck:
  """A check over several settings (e.g. partition vs dataset), given the flat values.

  `message` may be a function of the values, to name the valid choices for them.
  """
  flags: tuple[str, ...]
  predicate: Callable[[Flat], bool]
  message: Union[str, Callable[[Flat], str]]

  def error(self, values: Flat) -> str:
    return self.message(values) if callable(self.message) else self.message


@dataclasses.dataclass(frozen=True)
class Field:
  """One setting: its section, field name, flag name, default, type and declaration."""
  section: str
  name: str
  flag: str
  default: Any
  type: Any
  setting: Setting

  @property
  def base_type(self) -> Any:
    """The type without Optional[...] (e.g. int for Optional[int])."""
    args = [a for a in typing.get_args(self.type) if a is not type(None)]
    return args[0] if typing.get_origin(self.type) is typing.Union else self.type

  @property
  def is_tuple(self) -> bool:
    return typing.get_origin(self.base_type) is tuple

  @property
  def element_type(self) -> Any:
    return typing.get_args(self.base_type)[0] if self.is_tuple else self.base_type


class Section:
  """Base of config sections; `flag_prefix` is prepended to each field name to form its flag."""
  flag_prefix: ClassVar[str] = ''


def fields(config_type: type) -> list[Field]:
  """Every setting of a config type whose fields are Sections, in declaration order."""
  out = []
  hints = {}
  for section_field in dataclasses.fields(config_type):
    section_type = section_field.type
    hints = typing.get_type_hints(section_type)
    for f in dataclasses.fields(section_type):
      declared = f.metadata['setting']
      out.append(Field(section=section_field.name, name=f.name,
                       flag=declared.flag or section_type.flag_prefix + f.name,
                       default=f.default, type=hints[f.name], setting=declared))
  return out


def normalized(value: Any) -> Any:
  """The value as it reads back from JSON (tuples become lists), for identity comparisons."""
  return json.loads(json.dumps(value))


def coerce(field: Field, value: Any) -> Any:
  """Converts flag/JSON values to the field's type: lists -> tuples, ints -> floats."""
  if value is None:
    return None
  if field.setting.path:
    return os.path.abspath(os.path.expanduser(value))
  if field.is_tuple:
    if isinstance(value, str):
      value = [v for v in value.split(',') if v.strip()]
    return tuple(field.element_type(v) for v in value)
  if field.base_type is float and isinstance(value, numbers.Real) and not isinstance(value, bool):
    return float(value)
  if field.base_type is int and isinstance(value, numbers.Integral) and not isinstance(
      value, bool):
    return int(value)  # numpy ints -> Python ints (TFF's sampler seeds only Python ints).
  return value


def value_errors(field: Field, value: Any) -> list[str]:
  """Messages for `value` failing the field's checks (None is exempt: it means unset)."""
  if value is None:
    return []
  errors = []
  values = value if field.is_tuple else (value,)
  if field.element_type is float and not all(math.isfinite(v) for v in values):
    errors.append(f'--{field.flag}={value!r}: must be a finite number')
  choices = field.setting.choices() if field.setting.choices else None
  if choices is not None and value not in choices:
    errors.append(f'--{field.flag}={value!r}: choose one of {list(choices)}')
  for predicate, message in field.setting.checks:
    if not errors and not predicate(value):
      errors.append(f'--{field.flag}={value!r}: {message}')
  return errors


def _resolved(all_fields: Sequence[Field], values: Mapping[str, Any]) -> Flat:
  """Every setting's value (missing: default), `None`s resolved in declaration order; unchecked."""
  flat = {f.flag: coerce(f, values.get(f.flag, f.default)) for f in all_fields}
  for f in all_fields:
    if flat[f.flag] is None and f.setting.resolve is not None:
      flat[f.flag] = coerce(f, f.setting.resolve(flat))
  return flat


def _domain(field: Field) -> Optional[Sequence[Any]]:
  """The finite values a setting takes (its choices, or a bool's), else None."""
  if field.setting.choices is not None and not field.is_tuple:
    return list(field.setting.choices())
  return [False, True] if field.base_type is bool else None


def unapplied(config_type: type, values: Mapping[str, Any],
              given: Collection[str]) -> list[applicability.Reason]:
  """Why each setting in `given` (flags given explicitly, e.g. on the command line) that the
  run of `values` makes inactive does not apply, with what would make it apply; [] if all apply.

  A given value of None is no request (None means unset). `values` must be valid (`resolve`).
  """
  all_fields = fields(config_type)
  flat = _resolved(all_fields, values)
  inactive = [f for f in all_fields
              if f.flag in given and values.get(f.flag) is not None and not is_active(f, flat)]
  domains = {f.flag: d for f in all_fields if (d := _domain(f)) is not None}
  flat_with = lambda changes: _resolved(all_fields, {**values, **changes})
  return [applicability.explain(applicability.Rule(f.flag, f.setting.active, f.setting.applies),
                                domains, flat_with) for f in inactive]


def resolve(config_type: type, cross_checks: Sequence[CrossCheck], values: Mapping[str, Any],
            given: Collection[str] = ()):
  """Builds a validated, fully resolved `config_type` from flag-name -> value (missing: default).

  Raises ConfigError naming the flag for unknown names, bad values and bad combinations (as
  the command line's validators find them first), then for settings in `given` that the run
  makes inactive (`unapplied`): one line naming each and what would make it apply.
  """
  all_fields = fields(config_type)
  known = {f.flag for f in all_fields}
  unknown = sorted(set(values) - known)
  if unknown:
    raise ConfigError(f'unknown setting(s) {unknown}; see --help for the flags')
  flat: Flat = {}
  for f in all_fields:
    flat[f.flag] = coerce(f, values.get(f.flag, f.default))
  errors = [e for f in all_fields for e in value_errors(f, flat[f.flag])]
  if errors:
    raise ConfigError('; '.join(errors))
  for f in all_fields:  # In declaration order: a resolver sees the settings before it.
    if flat[f.flag] is None and f.setting.resolve is not None:
      flat[f.flag] = coerce(f, f.setting.resolve(flat))
      errors += value_errors(f, flat[f.flag])
  errors += [check.error(flat) for check in cross_checks if not check.predicate(flat)]
  if errors:
    raise ConfigError('; '.join(errors))
  reasons = unapplied(config_type, values, given)
  if reasons:
    raise ConfigError(applicability.refusal(reasons))
  sections: dict[str, dict[str, Any]] = {}
  for f in all_fields:
    sections.setdefault(f.section, {})[f.name] = flat[f.flag]
  section_types = {s.name: s.type for s in dataclasses.fields(config_type)}
  return config_type(**{name: section_types[name](**kw) for name, kw in sections.items()})


def flat(config: Any) -> Flat:
  """Every setting of `config` by flag name, in declaration order."""
  return {f.flag: getattr(getattr(config, f.section), f.name) for f in fields(type(config))}


def is_active(field: Field, values: Flat) -> bool:
  return field.setting.active is None or bool(field.setting.active(values))


def active_flat(config: Any) -> Flat:
  """The settings that matter for this run (hparams.json), JSON-normalized."""
  values = flat(config)
  return {f.flag: normalized(values[f.flag]) for f in fields(type(config))
          if is_active(f, values)}


def identity(config: Any) -> Flat:
  """The active settings that determine what a run computes (locations left out)."""
  values = flat(config)
  return {f.flag: values[f.flag] for f in fields(type(config))
          if not f.setting.location and is_active(f, values)}


def differing_flags(config: Any, saved: Mapping[str, Any]) -> list[str]:
  """Flags whose active value differs from a saved hparams.json (missing there = default)."""
  values = flat(config)
  differing = []
  for f in fields(type(config)):
    if f.setting.location or not is_active(f, values):
      continue
    if f.setting.completed and values[f.flag] is None:
      continue  # Filled in from the data (its inputs are compared).
    if f.flag in saved:
      before = saved[f.flag]
    else:  # An older run without this setting had its default (resolved, if it resolves).
      before = (f.setting.resolve(values) if f.default is None and f.setting.resolve
                else f.default)
    if normalized(before) != normalized(values[f.flag]):
      differing.append(f.flag)
  return differing


def name_text(value: Any) -> str:
  """A setting's value as it reads in a run name: lists `a,b`, floats exact and shortest
  (`0.1`, `1e-05`, so distinct values never share a name), no path separators."""
  if isinstance(value, (list, tuple)):
    return ','.join(name_text(v) for v in value)
  if isinstance(value, float):
    return repr(value)
  return str(value).replace(os.sep, '_')


def short_hash(config: Any, length: int = 8) -> str:
  """A short stable hash of the run's identity (JSON with sorted keys)."""
  text = json.dumps(normalized(identity(config)), sort_keys=True)
  return hashlib.sha256(text.encode('utf-8')).hexdigest()[:length]
