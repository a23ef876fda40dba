"""Explaining an inactive setting from its rule alone, on toy rules (hand-written answers)."""

from tff_experiments.core import applicability

# Toy settings: two with finite domains, one numeric.
_DOMAINS = {'opt': ['sgd', 'sgdm', 'adam'], 'adaptive': [False, True]}
_RUN = {'opt': 'sgd', 'adaptive': False, 'fraction': 0.0, 'width': None}


def _flat_with(changes):
  return {**_RUN, **changes}


def _explain(active, applies=None):
  return applicability.explain(applicability.Rule('x', active, applies), _DOMAINS, _flat_with)


def test_evaluate_records_the_keys_a_rule_reads_in_order():
  rule = lambda f: f['opt'] == 'sgdm' and f.get('fraction') > 0
  assert applicability.evaluate(rule, _RUN) == (False, ['opt'])  # `and` stopped early.
  assert applicability.evaluate(rule, {**_RUN, 'opt': 'sgdm'}) == (False, ['opt', 'fraction'])


def test_one_choice_that_makes_the_rule_hold():
  reason = _explain(lambda f: f['opt'] == 'sgdm')
  assert str(reason) == '--x applies to --opt=sgdm; this run is --opt=sgd'


def test_every_choice_that_makes_it_hold_is_named():
  reason = _explain(lambda f: f['opt'] != 'sgd')
  assert str(reason) == '--x applies to --opt=sgdm|adam; this run is --opt=sgd'


def test_two_settings_that_must_change_together():
  reason = _explain(lambda f: f['opt'] in ('sgdm', 'adam') and f['adaptive'])
  assert str(reason) == ('--x applies to --opt=sgdm|adam with --adaptive=true; '
                         'this run is --opt=sgd, --adaptive=false')


def test_alternatives_that_are_not_a_product_are_listed_apart():
  domains = {**_DOMAINS, 'mode': ['a', 'b', 'c']}
  rule = lambda f: (f['opt'] == 'sgdm' and f['mode'] == 'b') or (f['opt'] == 'adam'
                                                                 and f['mode'] == 'c')
  reason = applicability.explain(applicability.Rule('x', rule), domains,
                                 lambda changes: {**_RUN, 'mode': 'a', **changes})
  assert reason.condition == 'to --opt=sgdm with --mode=b or --opt=adam with --mode=c'
  assert reason.current == '--opt=sgd, --mode=a'


def test_the_fewest_changes_win():
  rule = lambda f: (f['opt'] == 'sgdm' and f['adaptive']) or f['opt'] == 'adam'
  assert _explain(rule).condition == 'to --opt=adam'


def test_numeric_rules_use_the_declared_text_or_name_what_the_rule_read():
  rule = lambda f: f['fraction'] > 0
  declared = _explain(rule, applies='when --fraction > 0')
  assert str(declared) == '--x applies when --fraction > 0; this run is --fraction=0.0'
  assert str(_explain(rule)) == '--x does not apply to this run (--fraction=0.0)'
  unset = _explain(lambda f: f['width'] is not None, applies='with --width')
  assert str(unset) == '--x applies with --width; this run is without --width'


def test_one_line_names_every_flag_grouping_those_with_one_reason():
  off = applicability.Reason(('a',), 'to --opt=sgdm', '--opt=sgd')
  line = applicability.refusal([off, applicability.Reason(('b',), 'to --opt=sgdm', '--opt=sgd'),
                                applicability.Reason(('c',), 'when --fraction > 0',
                                                     '--fraction=0.0')])
  assert line == ('--a, --b apply to --opt=sgdm; this run is --opt=sgd. '
                  '--c applies when --fraction > 0; this run is --fraction=0.0')
  assert '\n' not in line
