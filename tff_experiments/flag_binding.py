"""Binds every config setting to an absl flag, generically (one field = one flag).

The flag's type, default, help and choices come from the field; its value checks and the
cross-setting checks run as absl validators, so bad values fail at parse time with a message
naming the flag, before anything is loaded or any directory is created. The config of the
parsed flags refuses a flag given explicitly (command line or flagfile: absl's `present`) that
the run makes inactive (`settings.from_flat`'s `given`). It lives in the library, not in
`launch/`, because `launch.run_experiment` and the sweep's planner (`sweeps.plan`, which checks
every point with run_experiment's own flags) both parse with it.
"""

from typing import Any, Collection, Optional, Sequence

from absl import flags

from tff_experiments import settings
from tff_experiments.core import config



def _help(field: config.Field) -> str:
  """The field's help, plus its checks (e.g. "must be > 0")."""
  checks = '; '.join(message for _, message in field.setting.checks)
  return f'{field.setting.help} ({checks})' if checks else field.setting.help


def _define(field: config.Field, flag_values: flags.FlagValues) -> None:
  default, kind = field.default, field.base_type
  if field.is_tuple:
    flags.DEFINE_list(field.flag, None if default is None else [str(v) for v in default],
                      _help(field), flag_values=flag_values)
  elif field.setting.choices is not None:
    flags.DEFINE_enum(field.flag, default, list(field.setting.choices()), _help(field),
                      flag_values=flag_values)
  elif kind is bool:
    flags.DEFINE_bool(field.flag, default, _help(field), flag_values=flag_values)
  elif kind is int:
    flags.DEFINE_integer(field.flag, default, _help(field), flag_values=flag_values)
  elif kind is float:
    flags.DEFINE_float(field.flag, default, _help(field), flag_values=flag_values)
  else:
    flags.DEFINE_string(field.flag, default, _help(field), flag_values=flag_values)


def _value_validator(field: config.Field):
  def check(value: Any) -> bool:
    try:
      errors = config.value_errors(field, config.coerce(field, value))
    except (TypeError, ValueError) as e:
      errors = [f'--{field.flag}={value!r}: {e}']
    if errors:
      raise flags.ValidationError('; '.join(errors))
    return True
  return check


def _cross_validator(check: config.CrossCheck):
  def validate(values: dict) -> bool:
    if not check.predicate(values):
      raise flags.ValidationError(check.error(values))
    return True
  return validate


def define_flags(flag_values: flags.FlagValues = flags.FLAGS, cross_checks: bool = True) -> None:
  """Defines one flag per setting of `settings.ExperimentConfig`, with its validators, and
  `--overwrite` (what to do with an existing run directory, not a setting of the run).

  `cross_checks=False` leaves out the checks across settings, for flags that are only part of
  a run's (a sweep's fixed flags, which its grid completes)."""
  flags.DEFINE_bool('overwrite', False,
                    'Replace an existing run directory of the same name (it must be a run of '
                    'this package, directly inside --root_output_dir).', flag_values=flag_values)
  for field in settings.fields():
    _define(field, flag_values)
    flags.register_validator(field.flag, _value_validator(field), flag_values=flag_values)
  for check in settings.CROSS_CHECKS if cross_checks else ():
    flags.register_multi_flags_validator(list(check.flags), _cross_validator(check),
                                         flag_values=flag_values)


def flag_names() -> list[str]:
  """The settings' flags `define_flags` defines, in settings order (without --overwrite)."""
  return [field.flag for field in settings.fields()]


def values(flag_values: flags.FlagValues) -> dict[str, Any]:
  """Every setting's parsed value, by flag name."""
  return {field.flag: flag_values[field.flag].value for field in settings.fields()}


def given(flag_values: flags.FlagValues) -> list[str]:
  """The settings' flags given explicitly, on the command line or in a flagfile."""
  return [field.flag for field in settings.fields() if flag_values[field.flag].present]


def config_from_flags(flag_values: flags.FlagValues = flags.FLAGS,
                      given_flags: Optional[Collection[str]] = None) -> settings.ExperimentConfig:
  """The resolved config of the parsed flags (raises config.ConfigError), refusing the flags
  in `given_flags` (default: every flag given explicitly) that the run makes inactive."""
  return settings.from_flat(values(flag_values),
                            given=given(flag_values) if given_flags is None else given_flags)


def without(argv: Sequence[str], names: Collection[str],
            flag_values: flags.FlagValues) -> list[str]:
  """`argv` (run_experiment's arguments, its flagfiles expanded) without the flags `names`:
  `--name=v`, `--name v`, `--name` and `--noname` are all left out."""
  expanded = flag_values.read_flags_from_files(list(argv), force_gnu=False)
  kept, takes_next = [], False
  for position, arg in enumerate(expanded):
    if takes_next:  # The value of a left-out `--name value`.
      takes_next = False
      continue
    if arg == '--':  # What follows is not flags.
      return kept + expanded[position:]
    name = arg.lstrip('-').split('=', 1)[0]
    if name not in flag_values and name.startswith('no') and name[2:] in flag_values:
      name = name[2:]
    if arg.startswith('-') and name in names:
      takes_next = '=' not in arg and not flag_values[name].boolean
      continue
    kept.append(arg)
  return kept
