"""Every registered name of every registry builds (aggregator layers: aggregators/test_stack)."""

import dp_accounting
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_federated as tff

import reference
import secure_layers
from tff_experiments.aggregators import secure
from tff_experiments.aggregators import stack
from tff_experiments.algorithms import registry as algorithms
from tff_experiments.algorithms import server_optimizers
from tff_experiments.clients import federated_data
from tff_experiments.clients import local_update
from tff_experiments.clients import lr_schedules
from tff_experiments.models import architectures
from tff_experiments.models import model as model_lib
from tff_experiments.privacy import accounting
from tff_experiments.privacy import mechanisms
from tff_experiments.runner import round_plan
from tff_experiments.secagg import rounds as secure_rounds


@pytest.mark.parametrize('name', architectures.ARCHITECTURES.names())
def test_every_model_builds(name):
  model = model_lib.build(name, input_shape=(28, 28, 1), num_classes=10, seed=0)
  assert model.keras()(tf.zeros([2, 28, 28, 1])).shape == (2, 10)


@pytest.mark.parametrize('name', algorithms.ALGORITHMS.names())
def test_every_algorithm_builds(name, make_config):
  config = make_config(algorithm=name)
  process = algorithms.build(config, model=reference.linear_model(0),
                             aggregator=stack.build(config))
  assert isinstance(process, tff.learning.templates.LearningProcess)


@pytest.mark.parametrize('name', server_optimizers.SERVER_OPTIMIZERS.names())
def test_every_server_optimizer_builds_and_steps(name, make_config):
  optimizer = server_optimizers.build(make_config(server_optimizer=name).server)
  weights, gradient = (tf.constant([1.0, 2.0]),), (tf.constant([1.0, -1.0]),)
  _, updated = optimizer.next(optimizer.initialize(tf.nest.map_structure(
      lambda t: tf.TensorSpec(t.shape, t.dtype), weights)), weights, gradient)
  assert updated[0].numpy()[0] < 1.0 and updated[0].numpy()[1] > 2.0  # A descent step.


@pytest.mark.parametrize('name', round_plan.SAMPLERS.names())
def test_every_sampler_draws_seeded_cohorts_of_the_expected_size(name):
  sample = round_plan.SAMPLERS.get(name)([str(i) for i in range(10)], seed=0,
                                         clients_per_round=3)
  cohorts = [sample(r) for r in range(1, 201)]
  assert all(len(c) == len(set(c)) for c in cohorts) and sample(1) == cohorts[0]
  assert np.mean([len(c) for c in cohorts]) == pytest.approx(3, abs=0.3)
  assert name in accounting.SAMPLING_EVENTS  # DP accounting knows its sampling event.


@pytest.mark.parametrize('name', mechanisms.MECHANISMS.names())
def test_every_dp_mechanism_clips_noises_and_has_an_event(name):
  mechanism = mechanisms.MECHANISMS.get(name)
  clipped, norm = mechanism.clip((tf.constant([3.0, -4.0]),), 1.0)
  assert float(norm) > 1.0 and float(tf.norm(clipped[0], ord=2)) <= 1.0 + 1e-6
  noise = mechanism.noise((tf.zeros([1000]),), scale=1.0, seed=tf.constant([1, 2], tf.int64))
  assert 0.5 < float(tf.math.reduce_std(noise[0])) < 2.0
  assert mechanism.query(clip=1.0, noise_multiplier=1.0, seed=0).initial_global_state()
  assert isinstance(mechanism.event(1.0), dp_accounting.DpEvent)


@pytest.mark.parametrize('name', accounting.ACCOUNTANTS.names())
@pytest.mark.parametrize('mode', accounting.MODES.names())
def test_every_accountant_and_mode_account_the_gaussian(name, mode):
  plan = accounting.PrivacyPlan('gaussian', mode, 'poisson', 100, 10, 1e-5, name)
  assert plan.supported() and 0 < plan.epsilon(1.0, 5) < plan.epsilon(1.0, 10) < np.inf


@pytest.mark.parametrize('name', lr_schedules.LR_SCHEDULES.names())
def test_every_lr_schedule_starts_at_the_base_rate_and_never_grows(name, make_config):
  client = make_config(client_lr_schedule=name, client_learning_rate=0.2).client
  rates = [lr_schedules.learning_rate(client, r) for r in range(1, 6)]
  assert rates[0] == 0.2 and all(0 < b <= a for a, b in zip(rates, rates[1:]))


@pytest.mark.parametrize('name', local_update.WEIGHTINGS.names())
def test_every_weighting_builds_a_client_update(name):
  assert callable(local_update.local_sgd(reference.linear_model(0), learning_rate=0.1,
                                         weighting=name))


@pytest.mark.parametrize('name', federated_data.DATASETS.names())
def test_every_dataset_names_a_registered_default_model_and_partitions(name):
  info = federated_data.DATASETS.get(name)
  assert info.default_model in architectures.ARCHITECTURES
  assert federated_data.partition_choices(name)
  assert callable(info.loader)  # Loading each is tested in tests/datasets on fixtures.


def test_the_embedded_dataset_loads(make_config, tmp_path):
  data = federated_data.load(make_config(cache_dir=str(tmp_path)).data)
  assert len(data.train.client_ids) == 10 and data.test_x.shape[1:] == (8, 8, 1)
  assert np.isin(data.test_y, np.arange(10)).all()


@pytest.mark.usefixtures('tff_worker')
@pytest.mark.parametrize('name', secure_rounds.SETUPS.names())
def test_every_secure_aggregation_protocol_sets_up_and_sums(name, make_config):
  assert secure.SECURE_SUMS.names() == secure_rounds.SETUPS.names()
  config = make_config(secure_aggregation=name, clients_per_round=2)
  value_type = tff.TensorType(np.float32, [4])
  outside, next_fn = secure_layers.aggregation_round(
      lambda: secure.value_sum(tff.aggregators.SumFactory(), config, weighted=False), value_type)
  setup = secure_rounds.protocol_setup(config.secure_aggregation, seed=0, client_ids=['a', 'b'],
                                       round_num=1)
  values = [np.arange(4, dtype=np.float32), np.full(4, -0.5, np.float32)]
  output = next_fn(outside.initialize(), values, setup.clients, setup.server)
  np.testing.assert_allclose(output.result, values[0] + values[1], atol=1e-4)
