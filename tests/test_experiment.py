"""Assembling an experiment: the split follows --split_seed only, the model --seed only."""

import random

import numpy as np

from tff_experiments import experiment


def _split(config):
  data = experiment.load_data(config)
  return {cid: sorted(np.asarray([e['y'] for e in data.train.create_tf_dataset_for_client(cid)]))
          for cid in data.train.client_ids}


def test_changing_seed_keeps_the_split_and_split_seed_changes_it(make_config, tmp_path):
  cache = str(tmp_path / 'cache')
  base = _split(make_config(seed=0, cache_dir=cache))
  assert _split(make_config(seed=5, cache_dir=cache)) == base
  assert _split(make_config(seed=0, split_seed=1, cache_dir=cache)) != base


def test_seed_changes_the_initial_model_without_touching_global_random_state(make_config):
  data = experiment.load_data(make_config())
  state = random.getstate(), np.random.get_state()[1].copy()
  a = experiment.build_model(make_config(seed=0), data).initial_weights.trainable
  b = experiment.build_model(make_config(seed=0), data).initial_weights.trainable
  c = experiment.build_model(make_config(seed=1), data).initial_weights.trainable
  assert random.getstate() == state[0] and np.array_equal(np.random.get_state()[1], state[1])
  assert all(np.array_equal(x, y) for x, y in zip(a, b))
  assert not np.allclose(a[0], c[0])
