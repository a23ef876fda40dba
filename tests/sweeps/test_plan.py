"""sweeps.plan: every point validated up front (a bad flag or value fails the whole sweep, naming
it), named from its parsed values, skip/resume from its run directory, and the flags left out
of the points where they do not apply."""

import os

import pytest

import sweep_helpers
from tff_experiments.core import files
from tff_experiments.results import run_dir
from tff_experiments.sweeps import grid
from tff_experiments.sweeps import plan

_FIXED = sweep_helpers.FIXED


def _plan(tmp_path, axes, fixed=_FIXED, seeds=None):
  return plan.plan_points(grid.combine(axes, seeds), list(fixed), str(tmp_path / 's'))


@pytest.mark.parametrize('axes,fixed,message', [
    ([grid.Axis('client_learning_rte', ('0.1',))], _FIXED,
     "unknown flag 'client_learning_rte'; did you mean client_learning_rate"),
    ([grid.Axis('client_learning_rate', ('0.1', '-1'))], _FIXED, 'client_learning_rate=-1'),
    ([grid.Axis('server_optimizer', ('sgd', 'adm'))], _FIXED, 'server_optimizer=adm'),
    ([grid.Axis('seed', ('0',))], [*_FIXED, '--totl_rounds=3'], 'totl_rounds'),
    ([grid.Axis('seed', ('0',))], [*_FIXED, '--experiment_name=x'], '--experiment_name after'),
    ([grid.Axis('total_rounds', ('1', '2'))], _FIXED, '--total_rounds is both'),
    ([grid.Axis('num_clients', ('10', '2'))], ['--clients_per_round=3'],
     r'num_clients=2.*clients_per_round must be <='),
])
def test_a_bad_flag_or_value_fails_the_whole_sweep_naming_it(tmp_path, axes, fixed, message):
  with pytest.raises(plan.SweepError, match=message):
    _plan(tmp_path, axes, fixed)
  assert not os.path.exists(tmp_path / 's')  # Nothing was created.


def test_points_are_named_from_parsed_values_and_run_under_the_sweep(tmp_path):
  planned = _plan(tmp_path, [grid.Axis('client_learning_rate', ('0.10', '0.3'))], seeds=[0, 1])
  names = [p.name for p, _ in planned]
  assert names == ['client_learning_rate=0.1-seed=0', 'client_learning_rate=0.1-seed=1',
                   'client_learning_rate=0.3-seed=0', 'client_learning_rate=0.3-seed=1']
  point, action = planned[1]
  assert action == run_dir.Action.START
  assert point.run_dir == str(tmp_path / 's' / names[1])
  assert point.log == str(tmp_path / 's' / f'{names[1]}.log')
  assert point.command[1:3] == ['-m', 'launch.run_experiment']
  assert point.command[3:] == [*_FIXED, '--client_learning_rate=0.10', '--seed=1',
                               f'--root_output_dir={tmp_path / "s"}',
                               f'--experiment_name={names[1]}']
  assert point.hparams['client_learning_rate'] == 0.1 and point.hparams['seed'] == 1


def test_equal_values_written_differently_are_one_run(tmp_path):
  with pytest.raises(grid.GridError, match='client_learning_rate=0.1'):
    _plan(tmp_path, [grid.Axis('client_learning_rate', ('0.1', '0.10'))])


def _fake_run(point, status):
  """A run directory as launch.run_experiment leaves it, with summary status `status`."""
  os.makedirs(point.run_dir)
  files.write_json_atomic(os.path.join(point.run_dir, 'hparams.json'), point.hparams)
  files.write_json_atomic(os.path.join(point.run_dir, 'summary.json'), {'status': status})


def test_rerun_skips_finished_runs_and_resumes_unfinished_ones(tmp_path):
  axes = [grid.Axis('client_learning_rate', ('0.1', '0.2', '0.3', '0.4'))]
  planned = _plan(tmp_path, axes)
  for (point, _), status in zip(planned, ['completed', 'diverged', 'interrupted']):
    _fake_run(point, status)
  actions = [action for _, action in _plan(tmp_path, axes)]
  assert actions == [run_dir.Action.DONE, run_dir.Action.DONE, run_dir.Action.RESUME,
                     run_dir.Action.START]


def test_a_run_directory_with_other_settings_fails_the_sweep_up_front(tmp_path):
  axes = [grid.Axis('client_learning_rate', ('0.1',))]
  point, _ = _plan(tmp_path, axes)[0]
  _fake_run(point, 'completed')
  with pytest.raises(plan.SweepError, match='total_rounds'):
    _plan(tmp_path, axes, fixed=[*_FIXED, '--total_rounds=5'])

def test_each_point_is_validated_with_its_grid_values_not_the_fixed_flags_alone(tmp_path):
  planned = _plan(tmp_path, [grid.Axis('dp_noise_multiplier', ('0.3', '1.0'))],
                  fixed=[*_FIXED, '--dp_mechanism=gaussian'])
  assert [p.hparams['dp_noise_multiplier'] for p, _ in planned] == [0.3, 1.0]
  assert [p.hparams['dp_mechanism'] for p, _ in planned] == ['gaussian', 'gaussian']
  with pytest.raises(plan.SweepError, match='needs --dp_noise_multiplier'):  # Still per point.
    _plan(tmp_path, [grid.Axis('seed', ('0',))], fixed=[*_FIXED, '--dp_mechanism=gaussian'])


def test_points_where_a_grid_flag_does_not_apply_are_one_run_without_it(tmp_path):
  planned = _plan(tmp_path, [grid.Axis('algorithm', ('fedavg', 'fedprox')),
                             grid.Axis('proximal_mu', ('0.01', '0.1'))], seeds=[0])
  points = [p for p, _ in planned]
  assert [p.name for p in points] == ['algorithm=fedavg-seed=0',
                                      'algorithm=fedprox-proximal_mu=0.01-seed=0',
                                      'algorithm=fedprox-proximal_mu=0.1-seed=0']
  assert points[0].values == {'algorithm': 'fedavg', 'seed': 0}
  assert not any('proximal_mu' in arg for arg in points[0].command)
  assert 'proximal_mu' not in points[0].hparams
  assert '--proximal_mu=0.1' in points[2].command and points[2].hparams['proximal_mu'] == 0.1
  assert planned.grid_points == 4
  assert planned.notes == ['note: --proximal_mu applies to --algorithm=fedprox: left out of 2 '
                           'of 4 grid points (they run without it)']


@pytest.mark.parametrize('in_flagfile', [False, True])
def test_a_fixed_flag_is_left_out_of_the_points_where_it_does_not_apply(tmp_path, in_flagfile):
  flagfile = tmp_path / 'fixed.flags'
  flagfile.write_text('\n'.join([*_FIXED, '--proximal_mu=0.1']))
  fixed = [f'--flagfile={flagfile}'] if in_flagfile else [*_FIXED, '--proximal_mu=0.1']
  planned = _plan(tmp_path, [grid.Axis('algorithm', ('fedavg', 'fedprox'))], fixed=fixed)
  (fedavg, _), (fedprox, _) = planned
  assert fedavg.command[3:] == [*_FIXED, '--algorithm=fedavg',
                                f'--root_output_dir={tmp_path / "s"}',
                                '--experiment_name=algorithm=fedavg']
  assert fedprox.command[3:5 + len(fixed)] == [*fixed, '--algorithm=fedprox',  # Unchanged.
                                                f'--root_output_dir={tmp_path / "s"}']
  assert fedprox.hparams['proximal_mu'] == 0.1 and 'proximal_mu' not in fedavg.hparams
  assert len(planned.notes) == 1 and 'left out of 1 of 2' in planned.notes[0]


@pytest.mark.parametrize('axes,fixed,message', [
    ([grid.Axis('seed', ('0', '1'))], [*_FIXED, '--proximal_mu=0.1'],
     r'^--proximal_mu does not apply at any point of this sweep \(it applies to '
     r'--algorithm=fedprox; the first point is --algorithm=fedavg\)$'),
    ([grid.Axis('proximal_mu', ('0.01', '0.1'))], [*_FIXED, '--algorithm=fednova'],
     '--proximal_mu does not apply at any point'),
])
def test_a_flag_that_applies_at_no_point_fails_the_sweep(tmp_path, axes, fixed, message):
  with pytest.raises(plan.SweepError, match=message):
    _plan(tmp_path, axes, fixed)
  assert not os.path.exists(tmp_path / 's')
