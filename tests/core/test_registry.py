"""The one Registry type: lookups, clear unknown-name errors, one registration per name."""

import pytest

from tff_experiments.core import registry


def test_lookup_and_sorted_choices():
  reg = registry.Registry('widget', flag='widget', entries={'b': 2, 'a': 1})
  assert reg.get('a') == 1 and reg.names() == ['a', 'b'] and 'b' in reg and len(reg) == 2
  assert reg.items() == [('b', 2), ('a', 1)]  # Registration order.


def test_unknown_name_names_the_flag_and_lists_the_choices():
  reg = registry.Registry('widget', flag='widget_kind', entries={'x': 0, 'y': 1})
  with pytest.raises(registry.UnknownNameError, match=r"--widget_kind='z'.*\['x', 'y'\]"):
    reg.get('z')


def test_a_name_is_registered_once():
  reg = registry.Registry('widget', flag='widget')
  reg.register('x', 1)
  with pytest.raises(ValueError, match='twice'):
    reg.register('x', 2)
  with pytest.raises(ValueError, match='non-empty'):
    reg.register('', 3)
