"""Binds every config setting to an absl flag, generically (one field = one flag).

The flag's type, default, help and choices come from the field; its value checks and the
cross-setting checks run as absl validators, so bad values fail at parse time with a message
naming the flag, before anything is loaded or any directory is created.
"""

from typing import Any

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


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """Defines one flag per setting of `settings.ExperimentConfig`, with its validators, and
  `--overwrite` (what to do with an existing run directory, not a setting of the run)."""
  flags.DEFINE_bool('overwrite', False,
                    'Replace an existing run directory of the same name (it must be a run of '
                    'this package, directly inside --root_output_dir).', flag_values=flag_values)
  for field in settings.fields():
    _define(field, flag_values)
    flags.register_validator(field.flag, _value_validator(field), flag_values=flag_values)
  for check in settings.CROSS_CHECKS:
    flags.register_multi_flags_validator(list(check.flags), _cross_validator(check),
                                         flag_values=flag_values)


def flag_names() -> list[str]:
  """The settings' flags `define_flags` defines, in settings order (without --overwrite)."""
  return [field.flag for field in settings.fields()]


def config_from_flags(flag_values: flags.FlagValues = flags.FLAGS) -> settings.ExperimentConfig:
  """The resolved config of the parsed flags (raises config.ConfigError)."""
  return settings.from_flat({field.flag: flag_values[field.flag].value
                             for field in settings.fields()})
