"""Model architectures by `--model` name: Keras builders mapping inputs to logits.

Inputs are images [H, W, C] or feature vectors [D] (the synthetic dataset); convolutional
architectures take images only (`images_only`), the others flatten whatever they get.
Architectures follow the papers they are named after. MLPs share one builder whose widths are a
parameter (`--mlp_hidden_units`), so McMahan's 2NN and the digits MLP are two entries, not two
copies.
"""

import dataclasses
import functools
from typing import Callable, Optional

import tensorflow as tf

from tff_experiments.core import registry

Builder = Callable[[tuple[int, ...], int], tf.keras.Model]


def mlp(input_shape: tuple[int, ...], num_classes: int, *,
        hidden_units: tuple[int, ...]) -> tf.keras.Model:
  """Flatten, then one ReLU Dense layer per entry of `hidden_units`, then the logits."""
  return tf.keras.Sequential(
      [tf.keras.layers.InputLayer(input_shape=input_shape), tf.keras.layers.Flatten()]
      + [tf.keras.layers.Dense(units, activation='relu') for units in hidden_units]
      + [tf.keras.layers.Dense(num_classes)])


def logistic(input_shape: tuple[int, ...], num_classes: int) -> tf.keras.Model:
  """Multinomial logistic (softmax) regression: Flatten, then Dense(num_classes) logits; the
  FedProx paper's model on its synthetic data and MNIST (610 params on 60 features)."""
  return tf.keras.Sequential([tf.keras.layers.InputLayer(input_shape=input_shape),
                              tf.keras.layers.Flatten(), tf.keras.layers.Dense(num_classes)])


def mcmahan_cnn(input_shape: tuple[int, ...], num_classes: int) -> tf.keras.Model:
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


def lenet(input_shape: tuple[int, ...], num_classes: int) -> tf.keras.Model:
  """NIID-Bench's MNIST CNN (Li et al. 2021), LeNet-5 style: conv5x5/6, pool, conv5x5/16,
  pool (valid padding), dense 120, dense 84 (44,426 params on MNIST).

  Valid padding shrinks the image, so inputs must be at least 16x16 (not the 8x8 digits).
  """
  return tf.keras.Sequential([
      tf.keras.layers.InputLayer(input_shape=input_shape),
      tf.keras.layers.Conv2D(6, 5, activation='relu'),
      tf.keras.layers.MaxPool2D(2),
      tf.keras.layers.Conv2D(16, 5, activation='relu'),
      tf.keras.layers.MaxPool2D(2),
      tf.keras.layers.Flatten(),
      tf.keras.layers.Dense(120, activation='relu'),
      tf.keras.layers.Dense(84, activation='relu'),
      tf.keras.layers.Dense(num_classes),
  ])


@dataclasses.dataclass(frozen=True)
class Architecture:
  """A registered architecture; `hidden_units` is set for MLPs (their default widths)."""
  build: Callable[..., tf.keras.Model]
  hidden_units: Optional[tuple[int, ...]] = None
  min_image_size: int = 1  # Smallest image height/width the architecture accepts.
  images_only: bool = False  # Convolutional: takes [H, W, C] images, not feature vectors.

  def builder(self, hidden_units: Optional[tuple[int, ...]] = None) -> Builder:
    """`(input_shape, num_classes) -> keras.Model`, MLP widths bound (default: the entry's)."""
    if self.hidden_units is None:
      return self.build
    return functools.partial(self.build, hidden_units=tuple(hidden_units or self.hidden_units))


# The EMNIST CNN is McMahan's CNN with a 62- or 10-way head (LEAF's FEMNIST baseline has the
# same conv stack); dropout is left out because TFF functional models need identical training
# and inference graphs.
ARCHITECTURES = registry.Registry('model', flag='model', entries={
    # McMahan et al. 2017 '2NN': 2 hidden layers of 200 ReLU units (199,210 params on MNIST).
    'mnist_2nn': Architecture(mlp, hidden_units=(200, 200)),
    'mnist_cnn': Architecture(mcmahan_cnn, images_only=True),
    'emnist_cnn': Architecture(mcmahan_cnn, images_only=True),
    # NIID-Bench's (Li et al. 2021) small CNN for MNIST-like 28x28 inputs.
    'lenet': Architecture(lenet, min_image_size=16, images_only=True),
    # A small MLP for scikit-learn's 8x8 digits: 64-32-10 (2,410 params).
    'digits_mlp': Architecture(mlp, hidden_units=(32,)),
    # FedProx's (Li et al. 2020) multinomial logistic regression.
    'logistic': Architecture(logistic),
})


def fits(name: str, input_shape: tuple[int, ...]) -> bool:
  """Whether model `name` accepts inputs of `input_shape`: images [H, W, C] at least its
  minimum size, feature vectors unless it takes images only (unknown names: left to --model)."""
  if name not in ARCHITECTURES:
    return True
  architecture = ARCHITECTURES.get(name)
  if len(input_shape) != 3:
    return not architecture.images_only
  return min(input_shape[:2]) >= architecture.min_image_size


def describe(input_shape: tuple[int, ...]) -> str:
  """'28x28 images' for [H, W, C] inputs, '60 features' for [D] (for messages)."""
  if len(input_shape) == 3:
    return f'{input_shape[0]}x{input_shape[1]} images'
  return f'{"x".join(map(str, input_shape))} features'


def is_mlp(name: str) -> bool:
  """Whether `--mlp_hidden_units` applies to model `name`."""
  return name in ARCHITECTURES and ARCHITECTURES.get(name).hidden_units is not None
