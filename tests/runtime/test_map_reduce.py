"""A round in MapReduce form computes what TFF's native form computes, bitwise, for the
package's algorithms and aggregation layers; a round the form cannot express is left alone."""

import collections

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_federated as tff

import reference
from tff_experiments.aggregators import stack
from tff_experiments.algorithms import registry as algorithms
from tff_experiments.clients import client_data
from tff_experiments.runtime import map_reduce

_CONFIGS = {
    'fedavg': {},
    'fednova': dict(algorithm='fednova', server_optimizer='adam'),
    'fedsgd': dict(algorithm='fedsgd'),
    'dp_adaptive_clip': dict(dp_mechanism='gaussian', dp_noise_multiplier=0.5, dp_clip_norm=1.0,
                             dp_adaptive_clip=True),
    'stochastic_quantization': dict(quantization='uniform', quantization_bits=3,
                                    quantization_rotation='hadamard', zeroing_norm=50.0),
    'local_dp': dict(algorithm='fedprox', proximal_mu=0.1, dp_mechanism='laplace',
                     dp_mode='local', dp_noise_multiplier=0.5, dp_clip_norm=1.0, clip_norm=2.0,
                     client_sampling='poisson', dp_accountant='pld'),
    'fednova_quantization': dict(algorithm='fednova', quantization='uniform',
                                 quantization_bits=4),
}


def _clients():
  rng = np.random.default_rng(0)
  return tff.simulation.datasets.TestClientData({f'c{i}': collections.OrderedDict(
      x=rng.random((5 + 3 * i, *reference.SHAPE)).astype(np.float32),
      y=rng.integers(0, reference.NUM_CLASSES, 5 + 3 * i).astype(np.int32)) for i in range(3)})


def _values(structure):
  return [np.asarray(v) for v in tf.nest.flatten(structure)]


@pytest.mark.usefixtures('tff_worker')
@pytest.mark.parametrize('name', sorted(_CONFIGS))
def test_the_map_reduce_round_equals_the_native_round(name, make_config):
  config = make_config(**_CONFIGS[name])
  inputs = client_data.task_inputs(_clients(), epochs=2, batch_size=3)
  native = client_data.compose_with_tasks(client_data.task_sequence, algorithms.build(
      config, model=reference.linear_model(0), aggregator=stack.build(config), inputs=inputs))
  fused = map_reduce.compiled(native)
  assert fused.next is not native.next  # The form expressed it.

  state = native.initialize()
  native_state = fused_state = state
  for round_num in (1, 2):
    tasks = [client_data.task(f'c{i}', shuffle_seed=10 * round_num + i,
                              update_seed=100 * round_num + i) for i in range(3)]
    native_out = native.next(native_state, tasks)
    fused_out = fused.next(fused_state, tasks)
    native_state, fused_state = native_out.state, fused_out.state
    for got, want in zip(_values(fused_out.metrics), _values(native_out.metrics)):
      np.testing.assert_array_equal(got, want)
  for got, want in zip(_values(fused_state), _values(native_state)):
    np.testing.assert_array_equal(got, want)
  # The state keeps its Python containers (checkpoints restore into initialize()'s structure).
  assert type(fused_state) is type(state)
  assert type(fused.get_model_weights(fused_state)) is tff.learning.models.ModelWeights
  trained = fused.get_model_weights(fused_state).trainable[0]
  assert not np.array_equal(trained, fused.get_model_weights(state).trainable[0])


@pytest.mark.usefixtures('tff_worker')
def test_a_round_with_two_broadcasts_keeps_its_native_form():
  # Broadcast, aggregate, broadcast the aggregate, aggregate again: not one MapReduce round.
  @tff.federated_computation(tff.FederatedType(np.float32, tff.SERVER),
                             tff.FederatedType(np.float32, tff.CLIENTS))
  def two_phases(state, values):
    first = tff.federated_sum(tff.federated_map(
        tff.tensorflow.computation(lambda v, s: v * s),
        tff.federated_zip((values, tff.federated_broadcast(state)))))
    return tff.federated_sum(tff.federated_map(
        tff.tensorflow.computation(lambda v, s: v + s),
        tff.federated_zip((values, tff.federated_broadcast(first))))), first

  assert map_reduce.compile_round(two_phases) is None
