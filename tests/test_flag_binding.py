"""flag_binding: which flags were given (flagfiles count), and arguments without some flags."""

from absl import flags

from tff_experiments import flag_binding


def _flag_values(argv=()):
  values = flags.FlagValues()
  flag_binding.define_flags(values)
  values(['run_experiment', *argv])
  return values


def test_flags_from_a_flagfile_are_given(tmp_path):
  flagfile = tmp_path / 'f.flags'
  flagfile.write_text('# a comment\n--seed=3\n--nostop_at_target\n')
  values = _flag_values([f'--flagfile={flagfile}', '--total_rounds=2'])
  assert flag_binding.given(values) == ['seed', 'total_rounds', 'stop_at_target']


def test_without_leaves_out_every_form_of_the_flags(tmp_path):
  values = _flag_values()
  argv = ['--proximal_mu=0.1', '--seed', '3', '--proximal_mu', '0.2', '--stop_at_target',
          '--nostop_at_target', '--total_rounds=2', '--', '--proximal_mu=9']
  assert flag_binding.without(argv, {'proximal_mu', 'stop_at_target'}, values) == [
      '--seed', '3', '--total_rounds=2', '--', '--proximal_mu=9']


def test_without_expands_flagfiles_only_to_leave_flags_out_of_them(tmp_path):
  flagfile = tmp_path / 'f.flags'
  flagfile.write_text('--dataset=digits\n--proximal_mu=0.1\n')
  values = _flag_values()
  assert flag_binding.without([f'--flagfile={flagfile}', '--seed=1'], {'proximal_mu'},
                              values) == ['--dataset=digits', '--seed=1']
