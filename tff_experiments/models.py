"""Model registry: name -> Keras architecture, with seeded initial weights.

Every model maps images `[H, W, C]` in [0, 1] to class logits; the loss is sparse softmax
cross-entropy on logits. Architectures follow the papers they are named after.
"""

import collections
import dataclasses
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


@dataclasses.dataclass(frozen=True)
class Model:
  """A model as the algorithms use it: its architecture and its seeded initial weights.

  `keras()` builds a fresh instance of the architecture; client computations build it inside
  their graph and assign weights to its variables, which trains as fast as a plain Keras loop
  (TFF's functional models cost ~25% more per step here).
  """
  name: str
  architecture: Callable[[tuple[int, ...], int], tf.keras.Model]
  input_shape: tuple[int, ...]
  num_classes: int
  initial_weights: tff.learning.models.ModelWeights  # numpy arrays, fixed by the seed

  def keras(self) -> tf.keras.Model:
    """A new instance of the architecture (its initial values are to be overwritten)."""
    return self.architecture(tuple(self.input_shape), self.num_classes)

  @property
  def input_spec(self) -> collections.OrderedDict:
    return element_spec(self.input_shape)

  def weights_type(self) -> tff.types.Type:
    """TFF type of `ModelWeights(trainable, non_trainable)`."""
    spec = lambda a: tf.TensorSpec(a.shape, tf.dtypes.as_dtype(a.dtype))
    return tff.types.tensorflow_to_type(tff.learning.models.ModelWeights(
        tuple(spec(w) for w in self.initial_weights.trainable),
        tuple(spec(w) for w in self.initial_weights.non_trainable)))


def loss_fn() -> tf.keras.losses.Loss:
  """The training and evaluation loss: mean softmax cross-entropy on logits."""
  return tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def element_spec(input_shape: tuple[int, ...]) -> collections.OrderedDict:
  """Spec of one batch: `x` float32 images, `y` int32 labels (see datasets.base)."""
  return collections.OrderedDict(
      x=tf.TensorSpec([None, *input_shape], tf.float32),
      y=tf.TensorSpec([None], tf.int32),
  )


def _architecture(name: str) -> Callable[[tuple[int, ...], int], tf.keras.Model]:
  if name not in MODELS:
    raise ValueError(f'--model={name!r} is unknown; choose one of {sorted(MODELS)}')
  return MODELS[name]


def _seeded(architecture: Callable[[tuple[int, ...], int], tf.keras.Model], *,
            input_shape: tuple[int, ...], num_classes: int, seed: int) -> tf.keras.Model:
  """An instance of `architecture` whose initial weights are determined by `seed` alone."""
  tf.keras.utils.set_random_seed(seed)
  return architecture(tuple(input_shape), num_classes)


def build_keras(name: str, *, input_shape: tuple[int, ...], num_classes: int,
                seed: int) -> tf.keras.Model:
  """Builds model `name` with initial weights determined by `seed` alone."""
  return _seeded(_architecture(name), input_shape=input_shape, num_classes=num_classes,
                 seed=seed)


def from_architecture(name: str, architecture: Callable[[tuple[int, ...], int], tf.keras.Model],
                      *, input_shape: tuple[int, ...], num_classes: int, seed: int) -> Model:
  """A `Model` of any Keras architecture, initial weights fixed by `seed`."""
  keras_model = _seeded(architecture, input_shape=input_shape, num_classes=num_classes,
                        seed=seed)
  return Model(
      name=name, architecture=architecture, input_shape=tuple(input_shape),
      num_classes=num_classes,
      initial_weights=tff.learning.models.ModelWeights(
          tuple(v.numpy() for v in keras_model.trainable_weights),
          tuple(v.numpy() for v in keras_model.non_trainable_weights)))


def build(name: str, *, input_shape: tuple[int, ...], num_classes: int, seed: int) -> Model:
  """Registered model `name` with initial weights fixed by `seed`."""
  return from_architecture(name, _architecture(name), input_shape=input_shape,
                           num_classes=num_classes, seed=seed)


def functional(model: Model) -> tff.learning.models.FunctionalModel:
  """The model as a TFF functional model (same initial weights), for TFF's own algorithms."""
  keras_model = model.keras()
  for variables, values in zip((keras_model.trainable_weights, keras_model.non_trainable_weights),
                               model.initial_weights):
    for variable, value in zip(variables, values):
      variable.assign(value)
  return tff.learning.models.functional_model_from_keras(
      keras_model, loss_fn=loss_fn(), input_spec=model.input_spec)
