"""The config mechanism on a toy config: flags, checks, resolution, activity, identity."""

import dataclasses
from typing import ClassVar, Optional

import pytest

from tff_experiments.core import config

setting = config.setting


@dataclasses.dataclass(frozen=True)
class _Opt(config.Section):
  flag_prefix: ClassVar[str] = 'opt_'
  name: str = setting('sgd', choices=lambda: ['sgd', 'sgdm'], help='optimizer')
  momentum: float = setting(0.9, active=lambda f: f['opt_name'] == 'sgdm',
                            checks=[(lambda v: 0 <= v < 1, 'must be in [0, 1)')], help='m')
  widths: Optional[tuple[int, ...]] = setting(None, resolve=lambda f: (8, 8), help='w')
  where: str = setting('/tmp', location=True, help='location')


@dataclasses.dataclass(frozen=True)
class _Toy:
  opt: _Opt


_CHECKS = (config.CrossCheck(('opt_name', 'opt_momentum'),
                             lambda f: not (f['opt_name'] == 'sgd' and f['opt_momentum'] > 0.95),
                             'no'),)


def _make(**values):
  return config.resolve(_Toy, _CHECKS, values)


def test_flags_are_prefixed_field_names_with_types():
  fields = {f.flag: f for f in config.fields(_Toy)}
  assert list(fields) == ['opt_name', 'opt_momentum', 'opt_widths', 'opt_where']
  assert fields['opt_widths'].is_tuple and fields['opt_widths'].element_type is int
  assert fields['opt_momentum'].base_type is float


def test_resolution_coercion_and_active_settings():
  toy = _make(opt_widths=['4', '2'])  # As absl's list flags give them.
  assert toy.opt.widths == (4, 2) and toy.opt.momentum == 0.9
  assert _make().opt.widths == (8, 8)  # Resolved from None.
  assert 'opt_momentum' not in config.active_flat(toy)
  assert config.active_flat(_make(opt_name='sgdm'))['opt_momentum'] == 0.9
  assert config.active_flat(toy)['opt_widths'] == [4, 2]  # JSON form.


@pytest.mark.parametrize('values,message', [
    ({'opt_name': 'adam'}, r"--opt_name='adam': choose one of \['sgd', 'sgdm'\]"),
    ({'opt_momentum': 1.0}, r'--opt_momentum=1.0: must be in \[0, 1\)'),
    ({'opt_momentum': float('nan')}, '--opt_momentum=nan: must be a finite number'),
    ({'opt_momentum': 0.99}, 'no'),
    ({'typo': 1}, r"unknown setting\(s\) \['typo'\]"),
])
def test_bad_values_name_the_flag(values, message):
  with pytest.raises(config.ConfigError, match=message):
    _make(**values)


def test_identity_is_json_normalized_ignores_locations_and_defaults_missing_fields():
  toy = _make(opt_widths=(4, 2), opt_where='/elsewhere')
  saved = {'opt_name': 'sgd', 'opt_widths': [4, 2], 'opt_where': '/tmp'}  # Read from JSON.
  assert config.differing_flags(toy, saved) == []
  assert config.differing_flags(toy, {'opt_name': 'sgd'}) == ['opt_widths']  # Default (8, 8).
  assert config.differing_flags(_make(), {}) == []  # An older run without these fields.
  sgdm = _make(opt_name='sgdm', opt_momentum=0.5)
  assert config.differing_flags(sgdm, {'opt_name': 'sgdm', 'opt_widths': [8, 8]}) == [
      'opt_momentum']
  assert config.short_hash(toy) == config.short_hash(_make(opt_widths=[4, 2]))
  assert config.short_hash(toy) != config.short_hash(_make())
