"""Grid parsing, expansion and run naming (pure logic, no TensorFlow)."""

import json

import pytest

from tff_experiments.sweeps import grid


def test_parse_axis_splits_flag_and_values():
  assert grid.parse_axis('client_learning_rate=0.01, 0.03,0.1') == grid.Axis(
      'client_learning_rate', ('0.01', '0.03', '0.1'))
  assert grid.parse_axis('--seed=3') == grid.Axis('seed', ('3',))


@pytest.mark.parametrize('spec', ['client_learning_rate', '=0.1', 'lr=', 'lr=0.1,,0.2'])
def test_malformed_axis_is_rejected(spec):
  with pytest.raises(grid.GridError, match='flag=value'):
    grid.parse_axis(spec)


def test_grid_files_json_and_yaml(tmp_path):
  (tmp_path / 'g.json').write_text(json.dumps(
      {'server_optimizer': ['sgd', 'adam'], 'mlp_hidden_units': [[32], [64, 64]]}))
  (tmp_path / 'g.yaml').write_text('client_learning_rate: [0.01, 0.1]\nclient_batch_size: 20\n')
  assert grid.read_grid_file(str(tmp_path / 'g.json')) == [
      grid.Axis('server_optimizer', ('sgd', 'adam')),
      grid.Axis('mlp_hidden_units', ([32], [64, 64]))]
  assert grid.read_grid_file(str(tmp_path / 'g.yaml')) == [
      grid.Axis('client_learning_rate', (0.01, 0.1)), grid.Axis('client_batch_size', (20,))]


def test_bad_grid_file_names_the_file(tmp_path):
  (tmp_path / 'bad.yaml').write_text('- just\n- a list\n')
  with pytest.raises(grid.GridError, match='bad.yaml'):
    grid.read_grid_file(str(tmp_path / 'bad.yaml'))
  with pytest.raises(grid.GridError, match='missing.json'):
    grid.read_grid_file(str(tmp_path / 'missing.json'))


def test_expansion_is_the_product_with_seeds_last_and_first_axis_slowest():
  axes = grid.combine([grid.Axis('a', ('1', '2')), grid.Axis('b', ('x', 'y', 'z'))],
                      seeds=[0, 1])
  points = grid.expand(axes)
  assert len(points) == 2 * 3 * 2
  assert points[0] == {'a': '1', 'b': 'x', 'seed': 0}
  assert points[1] == {'a': '1', 'b': 'x', 'seed': 1}
  assert points[-1] == {'a': '2', 'b': 'z', 'seed': 1}
  assert [list(p) for p in points] == [['a', 'b', 'seed']] * 12


def test_a_flag_given_twice_is_rejected():
  with pytest.raises(grid.GridError, match='--a is given twice'):
    grid.combine([grid.Axis('a', ('1',)), grid.Axis('a', ('2',))])
  with pytest.raises(grid.GridError, match='--seeds'):
    grid.combine([grid.Axis('seed', ('1',))], seeds=[0])


def test_run_names_are_readable_and_canonical():
  assert grid.run_name({'client_learning_rate': 0.01, 'server_optimizer': 'adam',
                        'seed': 1}) == 'client_learning_rate=0.01-server_optimizer=adam-seed=1'
  # Parsed values name the run, so 0.10 and 0.1 are one run; floats are shortest-exact.
  assert grid.run_name({'lr': float('0.10')}) == grid.run_name({'lr': 0.1}) == 'lr=0.1'
  assert grid.run_name({'lr': 1e-5, 'units': [64, 64], 'dir': '/a/b'}) == (
      'lr=1e-05-units=64,64-dir=_a_b')


def test_long_run_names_keep_a_prefix_and_a_hash():
  long_a, long_b = {'x': 'v' * 300}, {'x': 'v' * 299 + 'w'}
  assert len(grid.run_name(long_a)) == grid.MAX_NAME_LENGTH
  assert grid.run_name(long_a) != grid.run_name(long_b)
  assert grid.run_name(long_a) == grid.run_name(dict(long_a))  # Stable.


def test_duplicate_names_are_rejected():
  with pytest.raises(grid.GridError, match='lr=0.1'):
    grid.check_unique(['lr=0.1', 'lr=0.2', 'lr=0.1'])


def test_flag_args_are_what_run_experiment_parses():
  assert grid.flag_args({'stop_at_target': True, 'mlp_hidden_units': [64, 64], 'lr': 0.1}) == [
      '--stop_at_target=true', '--mlp_hidden_units=64,64', '--lr=0.1']


def test_default_sweep_name_is_stable_and_tracks_the_fixed_flags():
  axes = [grid.Axis('client_learning_rate', ('0.1', '0.2'))]
  name = grid.default_sweep_name(axes, ['--dataset=digits'])
  assert name.startswith('sweep-client_learning_rate-')
  assert name == grid.default_sweep_name(axes, ['--dataset=digits'])
  assert name != grid.default_sweep_name(axes, ['--dataset=mnist'])
