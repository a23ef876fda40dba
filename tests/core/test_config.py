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


@dataclasses.dataclass(frozen=True)
class _Run(config.Section):
  """Toy settings whose rules read a choice, a resolved value and a location."""
  opt: str = setting('sgd', choices=lambda: ['sgd', 'sgdm'], help='optimizer')
  momentum: float = setting(0.9, active=lambda f: f['opt'] == 'sgdm', help='m')
  kind: Optional[str] = setting(None, choices=lambda: ['dense', 'conv'],
                                resolve=lambda f: 'conv' if f['opt'] == 'sgdm' else 'dense',
                                help='resolved from opt')
  width: int = setting(8, active=lambda f: f['kind'] == 'dense', help='dense only')
  hosts: Optional[str] = setting(None, location=True, active=lambda f: f['hosts'] is not None,
                                 help='where')
  timeout: float = setting(1.0, location=True, active=lambda f: f['hosts'] is not None,
                           applies='with --hosts', help='how long')


@dataclasses.dataclass(frozen=True)
class _RunConfig:
  run: _Run


def _run(values, given):
  return config.resolve(_RunConfig, (), values, given=given)


@pytest.mark.parametrize('values,message', [
    # Given at its default value, still asked for: refused.
    ({'momentum': 0.9}, '--momentum applies to --opt=sgdm; this run is --opt=sgd'),
    # Its rule reads a value resolved from another: the resolved one decides.
    ({'opt': 'sgdm', 'width': 4}, '--width applies to --kind=dense; this run is --kind=conv'),
    ({'timeout': 3.0}, '--timeout applies with --hosts; this run is without --hosts'),
    ({'momentum': 0.5, 'timeout': 3.0},
     '--momentum applies to --opt=sgdm; this run is --opt=sgd. '
     '--timeout applies with --hosts; this run is without --hosts'),
])
def test_a_given_setting_the_run_makes_inactive_is_refused(values, message):
  with pytest.raises(config.ConfigError) as refused:
    _run(values, given=values)
  assert str(refused.value) == message
  _run(values, given=())  # Not given: ignored, as before.


def test_given_settings_that_apply_and_unset_ones_are_accepted():
  assert _run({'opt': 'sgdm', 'momentum': 0.5}, given={'opt', 'momentum'}).run.momentum == 0.5
  assert _run({'width': 4, 'kind': 'dense'}, given={'width', 'kind'}).run.width == 4
  assert _run({'hosts': 'h:1', 'timeout': 2.0}, given={'hosts', 'timeout'}).run.timeout == 2.0
  assert _run({'hosts': None}, given={'hosts'}).run.hosts is None  # None: not a request.
  assert config.unapplied(_RunConfig, {'momentum': 0.9}, given=()) == []


def test_bad_values_are_reported_before_what_does_not_apply():
  with pytest.raises(config.ConfigError, match=r'^--opt_momentum=1.0: must be in \[0, 1\)$'):
    config.resolve(_Toy, _CHECKS, {'opt_momentum': 1.0}, given={'opt_momentum'})
