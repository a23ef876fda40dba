"""Personalization: seeded client choice, fine-tuning helps a separable client, 0 steps change
nothing, the columns reach metrics.csv and a resumed run repeats them."""

import collections
import math

import numpy as np
import pandas as pd
import pytest
import tensorflow_federated as tff

import reference
import run_helpers
from tff_experiments.core import config as config_lib
from tff_experiments.evaluation import personalization
from tff_experiments.results import run_dir

_COLUMNS = [f'personalization/{when}_accuracy_{stat}'
            for when in ('before', 'after') for stat in ('mean', 'p10')]


def test_clients_are_drawn_from_seed_once_and_capped():
  ids = [f'c{i}' for i in range(30)]
  chosen = personalization.choose_clients(ids, seed=4, count=5)
  assert chosen == personalization.choose_clients(ids, seed=4, count=5)
  assert len(set(chosen)) == 5 and set(chosen) <= set(ids)
  assert chosen != personalization.choose_clients(ids, seed=5, count=5)
  assert personalization.choose_clients(ids[:3], seed=4, count=20) == ids[:3]


def test_summary_is_mean_and_10th_percentile_over_clients_with_held_out_data():
  result = lambda before, after, n=10: {'before': {'accuracy': before, 'num_examples': n},
                                        'after': {'accuracy': after, 'num_examples': n}}
  before, after = [0.1, 0.4, 0.5, 0.9], [0.6, 0.7, 0.8, 1.0]
  columns = personalization.summarize(
      [result(b, a) for b, a in zip(before, after)] + [result(0.0, 0.0, n=0)])
  assert columns == pytest.approx({
      'personalization/before_accuracy_mean': np.mean(before),
      'personalization/before_accuracy_p10': np.percentile(before, 10),
      'personalization/after_accuracy_mean': np.mean(after),
      'personalization/after_accuracy_p10': np.percentile(after, 10)})
  assert columns['personalization/before_accuracy_p10'] == pytest.approx(0.19)
  assert all(math.isnan(v) for v in personalization.summarize([result(0, 0, n=0)]).values())


def _separable_client(n, seed):
  """Class c's examples have feature c near 1 and the others near 0: linearly separable."""
  rng = np.random.default_rng(seed)
  y = rng.integers(0, reference.NUM_CLASSES, size=n).astype(np.int32)
  x = rng.uniform(0.0, 0.2, size=(n, 4)).astype(np.float32)
  x[np.arange(n), y] += 0.8
  return collections.OrderedDict(x=x.reshape(n, *reference.SHAPE), y=y)


def _personalize(epochs=10, max_steps=None):
  model = reference.linear_model(seed=8)
  data = tff.simulation.datasets.TestClientData(
      {c: _separable_client(40, seed) for seed, c in enumerate(('a', 'b'))})
  computation = personalization.build_computation(
      model, data, epochs=epochs, batch_size=4, learning_rate=1.0, momentum=0.5,
      fraction=0.25)
  tasks = personalization.tasks(['a', 'b'], seed=0, split_seed=0, learning_rate=1.0)
  if max_steps is not None:
    tasks = [collections.OrderedDict(t, max_steps=np.int64(max_steps)) for t in tasks]
  return computation(tff.learning.models.ModelWeights(*model.initial_weights), tasks)


@pytest.mark.usefixtures('tff_worker')
def test_fine_tuning_a_separable_client_improves_its_held_out_accuracy():
  results = _personalize()
  for result in results:
    assert int(result['before']['num_examples']) == 10  # A quarter of 40 held out.
    assert float(result['after']['accuracy']) > float(result['before']['accuracy'])
    assert float(result['after']['accuracy']) >= 0.9
  columns = personalization.summarize(results)
  assert columns['personalization/after_accuracy_mean'] > (
      columns['personalization/before_accuracy_mean'])


@pytest.mark.usefixtures('tff_worker')
def test_zero_fine_tuning_steps_leave_the_model_as_it_was():
  for result in _personalize(max_steps=0):
    for name in ('loss', 'accuracy', 'num_examples'):
      assert result['after'][name] == result['before'][name]


def test_settings_are_active_only_when_on_and_checked(make_config):
  off = config_lib.active_flat(make_config())
  assert 'personalization_epochs' in off and 'personalization_clients' not in off
  assert 'split_seed' not in config_lib.active_flat(make_config(dataset='femnist_leaf'))
  on = make_config(personalization_epochs=2, client_batch_size=7, client_learning_rate=0.05)
  assert (on.personalization.batch_size, on.personalization.learning_rate) == (7, 0.05)
  assert 'split_seed' in config_lib.active_flat(
      make_config(dataset='femnist_leaf', personalization_epochs=1))
  for flag, bad in (('personalization_epochs', -1), ('personalization_holdout_fraction', 1.0),
                    ('personalization_clients', 0), ('personalization_learning_rate', 0.0)):
    with pytest.raises(config_lib.ConfigError, match=f'--{flag}'):
      make_config(**{'personalization_epochs': 1, flag: bad})


@pytest.mark.usefixtures('tff_worker')
def test_columns_reach_metrics_csv_on_evaluation_rounds_and_resume_alike(make_config,
                                                                         tmp_path):
  def config(name):
    return make_config(root_output_dir=str(tmp_path), experiment_name=name,
                       cache_dir=str(tmp_path / 'cache'), total_rounds=3, rounds_per_eval=2,
                       rounds_per_checkpoint=1, client_learning_rate=0.3, tensorboard=False,
                       personalization_epochs=1, personalization_clients=4)

  full, _ = run_helpers.run(config('full'))
  frame = run_helpers.metrics(full)
  assert frame[_COLUMNS].iloc[0].isna().all()  # Round 1 is not evaluated.
  assert frame[_COLUMNS].iloc[1:].notna().all().all()
  assert ((frame[_COLUMNS].iloc[1:] >= 0) & (frame[_COLUMNS].iloc[1:] <= 1)).all().all()
  cut = config('cut')
  with pytest.raises(RuntimeError, match='simulated crash'):
    run_helpers.run(cut, out=run_helpers.CrashAfter(2))
  run_helpers.run(cut)
  pd.testing.assert_frame_equal(frame, run_helpers.metrics(run_dir.paths_of(cut)),
                                check_exact=True)
