"""Model registry: name -> Keras architecture, as TFF functional models for training.

Every model maps images `[H, W, C]` in [0, 1] to class logits; the loss is sparse softmax
cross-entropy on logits. Architectures follow the papers they are named after.
"""

import collections
from typing import Callable

import tensorflow as tf
import tensorflow_federated as tff


def _mnist_2nn(input_shape: tuple[int, ...], num_classes: int) -> tf.keras.Model:
  """McMahan et al. 2017 '2NN': 2 hidden layers of 200 ReLU units (199,210 params on MNIST)."""
  return tf.keras.Sequential([
      tf.keras.layers.InputLayer(input_shape=input_shape),
      tf.keras.layers.Flatten(),
      tf.keras.layers.Dense(200, activation='relu'),
      tf.keras.layers.Dense(200, activation='relu'),
      tf.keras.layers.Dense(num_classes),
  ])


def _mcmahan_cnn(input_shape: tuple[int, ...], num_classes: int) -> tf.keras.Model:
  """McMahan et al. 2017 CNN: conv5x5/32, pool, conv5x5/64, pool, dense 512 (1,663,370 params)."""
  return tf.keras.Sequential([
      tf.keras.layers.InputLayer(input_shape=input_shape),
      tf.keras.layers.Conv2D(32, 5, padding='same', activation='relu'),
      tf.keras.layers.MaxPool2D(2, padding='same'),
      tf.keras.layers.Conv2D(64, 5, padding='same', activation='relu'),
      tf.keras.layers.MaxPool2D(2, padding='same'),
      tf.keras.layers.Flatten(),
      tf.keras.layers.Dense(512, activation='relu'),
      tf.keras.layers.Dense(num_classes),
  ])


def _digits_mlp(input_shape: tuple[int, ...], num_classes: int) -> tf.keras.Model:
  """A small MLP for scikit-learn's 8x8 digits: 64-32-10 (2,410 params)."""
  return tf.keras.Sequential([
      tf.keras.layers.InputLayer(input_shape=input_shape),
      tf.keras.layers.Flatten(),
      tf.keras.layers.Dense(32, activation='relu'),
      tf.keras.layers.Dense(num_classes),
  ])


# Name -> builder(input_shape, num_classes). The EMNIST CNN is McMahan's CNN with a 62- or
# 10-way head (LEAF's FEMNIST baseline has the same conv stack); dropout is left out because
# TFF functional models need identical training and inference graphs.
MODELS: dict[str, Callable[[tuple[int, ...], int], tf.keras.Model]] = {
    'mnist_2nn': _mnist_2nn,
    'mnist_cnn': _mcmahan_cnn,
    'emnist_cnn': _mcmahan_cnn,
    'digits_mlp': _digits_mlp,
}


def loss_fn() -> tf.keras.losses.Loss:
  """The training and evaluation loss: mean softmax cross-entropy on logits."""
  return tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def element_spec(input_shape: tuple[int, ...]) -> collections.OrderedDict:
  """Spec of one batch: `x` float32 images, `y` int32 labels (see datasets.base)."""
  return collections.OrderedDict(
      x=tf.TensorSpec([None, *input_shape], tf.float32),
      y=tf.TensorSpec([None], tf.int32),
  )


def build_keras(name: str, *, input_shape: tuple[int, ...], num_classes: int,
                seed: int) -> tf.keras.Model:
  """Builds model `name` with initial weights determined by `seed` alone."""
  if name not in MODELS:
    raise ValueError(f'--model={name!r} is unknown; choose one of {sorted(MODELS)}')
  tf.keras.utils.set_random_seed(seed)
  return MODELS[name](tuple(input_shape), num_classes)


def build(name: str, *, input_shape: tuple[int, ...], num_classes: int,
          seed: int) -> tff.learning.models.FunctionalModel:
  """Model `name` as a TFF functional model whose initial weights are fixed by `seed`."""
  keras_model = build_keras(name, input_shape=input_shape, num_classes=num_classes, seed=seed)
  return tff.learning.models.functional_model_from_keras(
      keras_model, loss_fn=loss_fn(), input_spec=element_spec(input_shape))
