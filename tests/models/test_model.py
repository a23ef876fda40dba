"""Model registry: parameter counts against the papers' architectures, seeded init."""

import numpy as np
import pytest

from tff_experiments.models import architectures
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
    # FedProx's softmax regression on its 60 synthetic features, and on MNIST images.
    ('logistic', (60,), 10, _dense(60, 10)),
    ('logistic', (28, 28, 1), 10, _dense(784, 10)),
    # NIID-Bench's LeNet: valid 5x5 convs and 2x2 pools take 28 -> 24 -> 12 -> 8 -> 4.
    ('lenet', (28, 28, 1), 10,
     _conv(5, 1, 6) + _conv(5, 6, 16) + _dense(4 * 4 * 16, 120) + _dense(120, 84)
     + _dense(84, 10)),
])
def test_parameter_counts(name, input_shape, num_classes, expected):
  model = models.build_keras(name, input_shape=input_shape, num_classes=num_classes, seed=0)
  assert model.count_params() == expected
  assert model.output_shape == (None, num_classes)


def test_paper_counts_match_independent_formulas():
  assert _dense(784, 200) + _dense(200, 200) + _dense(200, 10) == 199_210
  assert (_conv(5, 1, 32) + _conv(5, 32, 64) + _dense(7 * 7 * 64, 512) + _dense(512, 10)
          == 1_663_370)
  lenet = [_conv(5, 1, 6), _conv(5, 6, 16), _dense(4 * 4 * 16, 120), _dense(120, 84),
           _dense(84, 10)]
  assert lenet == [156, 2_416, 30_840, 10_164, 850] and sum(lenet) == 44_426


def test_lenet_layers_follow_niid_bench():
  model = models.build_keras('lenet', input_shape=(28, 28, 1), num_classes=10, seed=0)
  convs = [layer for layer in model.layers if 'conv' in layer.name]
  assert [(c.filters, c.kernel_size, c.padding) for c in convs] == [
      (6, (5, 5), 'valid'), (16, (5, 5), 'valid')]
  dense = [layer for layer in model.layers if 'dense' in layer.name]
  assert [d.units for d in dense] == [120, 84, 10]
  activations = [layer.activation.__name__ for layer in convs + dense]
  assert activations == ['relu', 'relu', 'relu', 'relu', 'linear']
  assert model.get_layer(index=3).output_shape == (None, 4, 4, 16)  # After the second pool.


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


def test_convolutional_models_refuse_feature_vectors_and_small_images():
  assert architectures.fits('logistic', (60,)) and architectures.fits('mnist_2nn', (60,))
  assert not any(architectures.fits(name, (60,)) for name in ('mnist_cnn', 'emnist_cnn', 'lenet'))
  assert architectures.fits('lenet', (28, 28, 1)) and not architectures.fits('lenet', (8, 8, 1))
  assert architectures.describe((60,)) == '60 features'
  assert architectures.describe((8, 8, 1)) == '8x8 images'
