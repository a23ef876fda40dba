"""The quantized downlink: clients rebuild the model within a quantization step, error does not
accumulate, and float32 is TFF's plain broadcast."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_federated as tff

from tff_experiments.algorithms import distributors

pytestmark = pytest.mark.usefixtures('tff_worker')
_TYPE = tff.types.tensorflow_to_type(tff.learning.models.ModelWeights(
    (tf.TensorSpec([20, 5], tf.float32), tf.TensorSpec([5], tf.float32)), ()))


def _stepper(process):
  """process.next with two clients present (a broadcast needs a client cardinality)."""

  @tff.federated_computation(process.initialize.type_signature.result,
                             tff.FederatedType(_TYPE, tff.SERVER),
                             tff.FederatedType(np.float32, tff.CLIENTS))
  def step(state, weights, clients):
    del clients
    output = process.next(state, weights)
    return output.state, output.result, output.measurements

  return lambda state, weights: step(state, weights, [np.float32(0)] * 2)


def _weights(rng, scale=1.0):
  return tff.learning.models.ModelWeights(
      (rng.normal(size=(20, 5)).astype(np.float32) * scale,
       rng.normal(size=5).astype(np.float32) * scale), ())


def test_clients_rebuild_the_model_within_one_step_and_errors_do_not_accumulate(make_config):
  process = distributors.build(make_config(downlink_bits=4), _TYPE)
  step = _stepper(process)
  rng = np.random.default_rng(0)
  state, model = process.initialize(), _weights(rng)
  errors = []
  for _ in range(4):
    model = tff.learning.models.ModelWeights(
        tuple(w + 0.01 * rng.normal(size=w.shape).astype(np.float32) for w in model.trainable),
        ())
    state, received, measurements = step(state, model)
    for got, held in zip(received.trainable, state['held'].trainable):
      np.testing.assert_array_equal(got, held)  # The state holds what clients rebuilt.
    squared = [np.sum((g - w)**2) for g, w in zip(received.trainable, model.trainable)]
    mse = measurements['comm']['downlink_quantization_mse']
    np.testing.assert_allclose(mse, sum(squared) / 105, rtol=1e-4)
    errors.append(float(mse))
  # Round 1 sends the whole model (range ~6); each later delta carries the small change plus
  # the last round's error, so the error shrinks round after round instead of accumulating.
  assert all(a > b for a, b in zip(errors, errors[1:])), errors
  assert errors[0] > 50 * errors[1] and errors[1] > 10 * errors[3]


def test_float32_downlink_is_tffs_plain_broadcast(make_config):
  process = distributors.build(make_config(downlink_bits=32), _TYPE)
  model = _weights(np.random.default_rng(1))
  _, received, _ = _stepper(process)(process.initialize(), model)
  for got, want in zip(received.trainable, model.trainable):
    np.testing.assert_array_equal(got, want)
