"""Model registry: parameter counts against the papers' architectures, seeded init."""

import numpy as np
import pytest

from tff_experiments.models import model as models


def _dense(n_in, n_out):
  return n_in * n_out + n_out


def _conv(k, c_in, c_out):
  return k * k * c_in * c_out + c_out


@pytest.mark.parametrize('name,input_shape,num_classes,expected', [
    ('mnist_2nn', (28, 28, 1), 10, 199_210),
    ('mnist_cnn', (28, 28, 1), 10, 1_663_370),
    # Independent count: two 5x5 convs, 7*7*64 flattened into 512, then the head.
    ('emnist_cnn', (28, 28, 1), 62,
     _conv(5, 1, 32) + _conv(5, 32, 64) + _dense(7 * 7 * 64, 512) + _dense(512, 62)),
    ('emnist_cnn', (28, 28, 1), 10, 1_663_370),
    ('digits_mlp', (8, 8, 1), 10, _dense(64, 32) + _dense(32, 10)),
])
def test_parameter_counts(name, input_shape, num_classes, expected):
  model = models.build_keras(name, input_shape=input_shape, num_classes=num_classes, seed=0)
  assert model.count_params() == expected
  assert model.output_shape == (None, num_classes)


def test_paper_counts_match_independent_formulas():
  assert _dense(784, 200) + _dense(200, 200) + _dense(200, 10) == 199_210
  assert (_conv(5, 1, 32) + _conv(5, 32, 64) + _dense(7 * 7 * 64, 512) + _dense(512, 10)
          == 1_663_370)


def test_initialization_is_a_function_of_the_seed():
  build = lambda seed: models.build_keras('digits_mlp', input_shape=(8, 8, 1), num_classes=10,
                                          seed=seed).get_weights()
  a, b, c = build(1), build(1), build(2)
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x, y)
  assert not np.allclose(a[0], c[0])


def test_model_and_its_functional_form_start_from_the_seeded_keras_weights():
  model = models.build('digits_mlp', input_shape=(8, 8, 1), num_classes=10, seed=3)
  keras_weights = models.build_keras('digits_mlp', input_shape=(8, 8, 1), num_classes=10,
                                     seed=3).get_weights()
  assert len(model.initial_weights.trainable) == len(keras_weights)
  for x, y in zip(model.initial_weights.trainable, keras_weights):
    np.testing.assert_array_equal(x, y)
  for x, y in zip(models.functional(model).initial_weights[0], keras_weights):
    np.testing.assert_array_equal(x, y)


def test_unknown_model_names_the_flag():
  with pytest.raises(ValueError, match='--model'):
    models.build_keras('nope', input_shape=(8, 8, 1), num_classes=10, seed=0)
