"""Synthetic(alpha, beta): the draws follow FedProx's model, deterministically, at any scale."""

import math
import re
import time

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

import run_helpers
from datasets import base
from datasets import registry
from datasets import synthetic
from tff_experiments import settings
from tff_experiments.clients import client_data
from tff_experiments.core import config

_PARAMS = {'alpha': 1.0, 'beta': 1.0, 'iid': False, 'max_examples': 10_000}


def _load(num_clients=100, seed=0, partition='natural', **params):
  return registry.load('synthetic', data_dir=None, cache_dir='/nonexistent', partition=partition,
                       num_clients=num_clients, partition_params={}, seed=seed,
                       only_digits=False, dataset_params={**_PARAMS, **params})


def _numpy(structure):
  return {k: v.numpy() for k, v in structure.items()}


def _sizes(generator, count):
  """n_k of clients 0 .. count - 1 (in one tf.data pass: thousands of eager calls are slow)."""
  return next(iter(tf.data.Dataset.range(count).map(generator.num_examples).batch(count))).numpy()


def _models(generator, count):
  """w [count, 10, 60], b [count, 10], v [count, 60] of clients 0 .. count - 1."""
  return _numpy(next(iter(tf.data.Dataset.range(count).map(generator.client_model).batch(count))))


def test_features_have_the_client_mean_and_the_diagonal_covariance():
  generator = synthetic.Generator(seed=3)
  z_scores, residuals = [], []
  for k in range(40):
    x = generator.examples(k, part='train')['x'].numpy().astype(np.float64)
    v = generator.client_model(k)['v'].numpy()
    # Per client and coordinate, the sample mean is v_kj give or take sqrt(Sigma_jj / n).
    z_scores.append((x.mean(axis=0) - v) / np.sqrt(synthetic.VARIANCES / len(x)))
    residuals.append(x - v)
  z = np.stack(z_scores)
  assert np.abs(z).max() < 5 and 0.85 < np.mean(z**2) < 1.15  # 2,400 standard normals.
  pooled = np.concatenate(residuals)
  assert len(pooled) > 5_000
  # Per-coordinate variance j^-1.2, within 4 standard errors (sqrt(2 / n) relative).
  ratio = pooled.var(axis=0) / synthetic.VARIANCES
  np.testing.assert_allclose(ratio, 1.0, atol=4 * math.sqrt(2 / len(pooled)))
  correlation = np.corrcoef(pooled[:, :5].T)[np.triu_indices(5, 1)]
  assert np.abs(correlation).max() < 0.06  # Diagonal Sigma: coordinates uncorrelated.


@pytest.mark.parametrize('iid', [False, True])
def test_labels_are_the_argmax_of_the_clients_softmax_model(iid):
  generator = synthetic.Generator(seed=1, iid=iid)
  for k in range(10):
    model = _numpy(generator.client_model(k))
    examples = _numpy(generator.examples(k, part='train'))
    logits = examples['x'].astype(np.float64) @ model['w'].T.astype(np.float64) + model['b']
    top_two = np.sort(logits, axis=1)[:, -2:]
    decided = top_two[:, 1] - top_two[:, 0] > 1e-4  # float32 rounding may flip near-ties only.
    assert decided.mean() > 0.99
    np.testing.assert_array_equal(examples['y'][decided], logits.argmax(axis=1)[decided])
    assert examples['y'].dtype == np.int32 and examples['x'].dtype == np.float32


def test_client_models_follow_the_priors_of_alpha_and_beta():
  models = _models(synthetic.Generator(seed=2, alpha=0.5, beta=2.0), 400)
  w_means = models['w'].mean(axis=(1, 2))  # u_k + N(0, 1/600)
  b_minus_w = models['b'].mean(axis=1) - w_means  # N(0, 1/10 + 1/600)
  v_means = models['v'].mean(axis=1)  # B_k + N(0, 1/60)
  v_spread = models['v'].var(axis=1, ddof=1)  # v_kj - B_k ~ N(0, 1)
  assert w_means.var() == pytest.approx(0.25 + 1 / 600, rel=0.25)
  assert b_minus_w.var() == pytest.approx(0.1 + 1 / 600, rel=0.25)
  assert v_means.var() == pytest.approx(4.0 + 1 / 60, rel=0.25)
  assert v_spread.mean() == pytest.approx(1.0, rel=0.05)
  assert abs(np.corrcoef(w_means, v_means)[0, 1]) < 0.2  # u_k and B_k are independent.
  homogeneous = _models(synthetic.Generator(seed=2, alpha=0.0, beta=0.0), 400)
  assert homogeneous['w'].mean(axis=(1, 2)).var() == pytest.approx(1 / 600, rel=0.25)


def test_iid_clients_share_one_model_and_centred_features():
  generator = synthetic.Generator(seed=4, iid=True, alpha=5.0, beta=5.0)  # alpha, beta unused.
  first, other = _numpy(generator.client_model(0)), _numpy(generator.client_model(7))
  for name in ('w', 'b'):
    np.testing.assert_array_equal(first[name], other[name])
  assert not first['v'].any()
  x = np.concatenate([generator.examples(k, part='train')['x'].numpy() for k in range(20)])
  assert np.abs(x.mean(axis=0) / np.sqrt(synthetic.VARIANCES / len(x))).max() < 5
  assert not np.array_equal(generator.examples(0, part='train')['x'][:5],
                            generator.examples(7, part='train')['x'][:5])


def test_draws_are_a_function_of_seed_and_client_only():
  a, b = synthetic.Generator(seed=5), synthetic.Generator(seed=5)
  np.testing.assert_array_equal(a.examples(9, part='train')['x'], b.examples(9, part='train')['x'])
  assert not np.array_equal(a.client_model(9)['w'], a.client_model(8)['w'])
  assert not np.array_equal(a.client_model(9)['w'], synthetic.Generator(seed=6).client_model(9)['w'])
  # Sizes have their own key: alpha, beta and iid leave every client's size as it was.
  same_sizes = synthetic.Generator(seed=5, alpha=0.0, beta=0.5, iid=True)
  np.testing.assert_array_equal(_sizes(a, 50), _sizes(same_sizes, 50))
  # The worker's dataset yields the client's training part as `examples` draws it.
  data = _load(num_clients=20, seed=5)
  element = next(iter(data.train.create_tf_dataset_for_client('0009').batch(100_000)))
  np.testing.assert_array_equal(element['x'], a.examples(9, part='train')['x'])
  np.testing.assert_array_equal(element['y'], a.examples(9, part='train')['y'])


def _tail(threshold):
  """P(floor(lognormal(4, 2)) >= t) = P(lognormal >= t) for an integer t >= 1."""
  return 0.5 * math.erfc((math.log(threshold) - 4.0) / (2.0 * math.sqrt(2)))


def test_client_sizes_follow_fedprox_power_law_and_the_cap():
  count = 4000
  uncapped = _sizes(synthetic.Generator(seed=0, max_examples=10**9), count)
  assert uncapped.min() >= 50
  for threshold in (1, 20, 55, 400, 3000):
    share = np.mean(uncapped - 50 >= threshold)
    p = _tail(threshold)
    assert abs(share - p) < 4 * math.sqrt(p * (1 - p) / count) + 1e-3, threshold
  capped = _sizes(synthetic.Generator(seed=0, max_examples=200), count)
  np.testing.assert_array_equal(capped, np.minimum(uncapped, 200))
  assert np.mean(capped == 200) == pytest.approx(_tail(150), abs=0.03)
  # 90/10: floor(0.9 n) train examples, the rest test.
  generator = synthetic.Generator(seed=0, max_examples=200)
  for k in range(5):
    n = int(capped[k])
    assert len(generator.examples(k, part='train')['y']) == 9 * n // 10
    assert len(generator.examples(k, part='test')['y']) == n - 9 * n // 10


def test_the_test_set_is_the_test_parts_of_the_first_clients(monkeypatch):
  monkeypatch.setattr(synthetic, 'TEST_CLIENTS', 12)
  generator = synthetic.Generator(seed=7, max_examples=300)
  parts = [_numpy(generator.examples(k, part='test')) for k in range(12)]
  x, y = synthetic.test_set(generator, 100)
  np.testing.assert_array_equal(x, np.concatenate([p['x'] for p in parts]))
  np.testing.assert_array_equal(y, np.concatenate([p['y'] for p in parts]))
  small_x, _ = synthetic.test_set(generator, 5)  # A population below the bound: all of it.
  np.testing.assert_array_equal(small_x, np.concatenate([p['x'] for p in parts[:5]]))
  # Train and test parts of a client are distinct draws of the same distribution.
  train = generator.examples(3, part='train')['x'].numpy()
  assert not np.isin(parts[3]['x'][:, 0], train[:, 0]).any()


def test_a_population_of_100000_is_ids_only_and_its_computation_does_not_grow(monkeypatch):
  calls = []
  examples = synthetic.Generator.examples
  monkeypatch.setattr(synthetic.Generator, 'examples',
                      lambda self, *a, **k: calls.append(1) or examples(self, *a, **k))
  generator = synthetic.Generator(seed=0)
  synthetic.client_data(generator, 10)  # Warm TF's tracing machinery up.
  calls.clear()
  began = time.perf_counter()
  population = synthetic.client_data(generator, 100_000)
  assert time.perf_counter() - began < 1.0
  assert len(calls) <= 1  # Traced once (for the element spec), never run per client.
  assert population.client_ids[0] == '00000' and population.client_ids[-1] == '99999'
  assert population.client_ids == sorted(population.client_ids)
  sizes = [len(client_data.build_dataset_computation(
      synthetic.client_data(generator, n), epochs=1, batch_size=10)
      .to_building_block().proto.SerializeToString()) for n in (1000, 100_000)]
  assert abs(sizes[1] - sizes[0]) < 32  # Only the population constant's digits differ.


def test_load_gives_the_population_and_a_test_set_of_1000_clients():
  data = _load(num_clients=3000, max_examples=100)
  assert len(data.train.client_ids) == 3000 and data.num_classes == 10
  sizes = _sizes(synthetic.Generator(seed=0, max_examples=100), 1000)
  assert data.test_x.shape == (int(np.sum(sizes - 9 * sizes // 10)), 60)
  assert data.test_x.dtype == np.float32 and np.isin(data.test_y, np.arange(10)).all()


@pytest.mark.parametrize('overrides, flag', [
    ({'partition': 'iid'}, '--partition'),
    ({'num_clients': 0}, '--num_clients'),
    ({'seed': -1}, '--split_seed'),
    ({'alpha': -0.5}, '--synthetic_alpha'),
    ({'beta': float('nan')}, '--synthetic_beta'),
    ({'max_examples': 49}, '--synthetic_max_examples'),
])
def test_bad_arguments_name_the_flag(overrides, flag):
  with pytest.raises(base.DataError, match=flag):
    _load(**overrides)


def test_missing_dataset_params_name_their_flags():
  with pytest.raises(base.DataError, match='--synthetic_alpha'):
    registry.load('synthetic', data_dir=None, cache_dir='/x', partition='natural',
                  num_clients=10, partition_params={}, seed=0, only_digits=False)


def test_settings_record_synthetic_flags_only_for_synthetic():
  active = lambda **v: config.active_flat(settings.from_flat(v))
  flags = {'synthetic_alpha', 'synthetic_beta', 'synthetic_iid', 'synthetic_max_examples'}
  default = active(dataset='synthetic')
  assert flags <= set(default) and {'num_clients', 'split_seed'} <= set(default)
  assert 'only_digits' not in default and default['model'] == 'logistic'
  assert default['partition'] == 'natural'
  assert not flags & set(active()) and not flags & set(active(dataset='femnist_leaf'))
  iid = active(dataset='synthetic', synthetic_iid=True)
  assert 'synthetic_alpha' not in iid and 'synthetic_max_examples' in iid


@pytest.mark.parametrize('values, flag', [
    ({'model': 'lenet'}, '--model'),
    ({'model': 'mnist_cnn'}, '--model'),
    ({'partition': 'dirichlet'}, '--partition'),
    ({'num_clients': 5, 'clients_per_round': 6}, '--clients_per_round'),
    ({'synthetic_max_examples': 10}, '--synthetic_max_examples'),
    ({'synthetic_beta': -1.0}, '--synthetic_beta'),
])
def test_bad_combinations_are_config_errors_naming_the_flag(values, flag):
  with pytest.raises(config.ConfigError, match=flag):
    settings.from_flat({'dataset': 'synthetic', **values})


def test_the_cnn_refusal_says_the_inputs_are_features():
  with pytest.raises(config.ConfigError, match='60 features'):
    settings.from_flat({'dataset': 'synthetic', 'model': 'emnist_cnn'})
  for model in ('logistic', 'digits_mlp', 'mnist_2nn'):
    assert settings.from_flat({'dataset': 'synthetic', 'model': model}).model.model == model


@pytest.mark.usefixtures('tff_worker')
def test_a_run_on_a_population_of_10000_trains_the_logistic_model(make_config, tmp_path):
  paths, summary = run_helpers.run(make_config(
      dataset='synthetic', synthetic_iid=True, synthetic_max_examples=200, num_clients=10_000,
      clients_per_round=5, client_batch_size=10, client_learning_rate=0.5, total_rounds=3,
      root_output_dir=str(tmp_path), experiment_name='synthetic', cache_dir=str(tmp_path)))
  metrics = pd.read_csv(paths.metrics_csv)
  assert summary['status'] == 'completed' and list(metrics['round_num']) == [1, 2, 3]
  assert metrics['eval/accuracy'].iloc[-1] > 0.5  # iid: one softmax model labels everything.
  assert not list(tmp_path.rglob('*.tfrecord'))  # No client files anywhere.


def test_tfs_float32_normal_draws_stay_within_the_bound_the_scale_limit_assumes():
  # Box-Muller with its uniform clamped at 1e-7: |z| <= sqrt(-2 ln 1e-7) = 5.678. Four million
  # draws reach past 4.5 (P(|z| > 4.5) = 6.8e-6) but never past the bound.
  draws = tf.random.stateless_normal([4_000_000], seed=[3, 4], alg='philox').numpy()
  assert 4.5 < np.abs(draws).max() <= synthetic.MAX_NORMAL
  np.testing.assert_allclose(synthetic.MAX_NORMAL, 5.678, atol=1e-3)


def _worst_logit(scale: float) -> np.float32:
  """The largest logit the generator can compute in float32 at alpha = beta = scale: every
  normal draw at +5.678 (u, W, b, B, v and the noise), so w, b = (a+1)z and x = (a+2)z."""
  z = np.float32(synthetic.MAX_NORMAL)
  a = np.float32(scale)
  w = np.full((synthetic.NUM_CLASSES, synthetic.NUM_FEATURES), a * z + z, np.float32)
  x = np.full(synthetic.NUM_FEATURES, (a * z + z) + z, np.float32)
  with np.errstate(over='ignore'):
    return (w @ x + (a * z + z)).max()


def test_the_largest_accepted_alpha_and_beta_keep_every_logit_finite_and_little_more_does_not():
  assert synthetic.MAX_SCALE == 4.1e17
  assert np.isfinite(_worst_logit(synthetic.MAX_SCALE))
  assert np.isinf(_worst_logit(1.05 * synthetic.MAX_SCALE))
  # And real draws at the bound are finite data with labels.
  generator = synthetic.Generator(seed=0, alpha=synthetic.MAX_SCALE, beta=synthetic.MAX_SCALE)
  for index in range(5):
    examples = _numpy(generator.examples(index, part='train'))
    assert np.isfinite(examples['x']).all() and len(examples['y'])


@pytest.mark.parametrize('flag', ['synthetic_alpha', 'synthetic_beta'])
@pytest.mark.parametrize('value', [1e300, 4.2e17])
def test_alpha_and_beta_that_overflow_the_generator_are_refused_naming_the_bound(flag, value):
  with pytest.raises(config.ConfigError, match=re.escape(
      f"--{flag}={value!r}: must be in [0, 4.1e+17] (larger values overflow the generator's "
      'float32 logits)')):
    settings.from_flat({'dataset': 'synthetic', flag: value})
  with pytest.raises(base.DataError, match=rf'--{flag} must be in \[0, 4.1e\+17\]'):
    _load(**{flag.split('_')[1]: value})
  assert settings.from_flat({'dataset': 'synthetic', flag: 4.1e17}).data.synthetic_alpha >= 1
