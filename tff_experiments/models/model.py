"""A model as algorithms use it: an architecture plus initial weights fixed by a seed.

Seeding never touches global RNG state: each weight is re-drawn by a copy of its layer's own
initializer given a seed derived from (seed, layer, weight), and Keras's own draws from
Python's `random` while building unseeded layers are undone, so building a model (or an
evaluator) changes no other random stream of the process.
"""

import collections
import contextlib
import dataclasses
import random
from typing import Iterator, Optional

import numpy as np

import tensorflow as tf
import tensorflow_federated as tff

from tff_experiments.core import seeds
from tff_experiments.models import architectures


@dataclasses.dataclass(frozen=True)
class Model:
  """An architecture and its seeded initial weights (numpy arrays).

  `keras()` builds a fresh, unseeded instance of the architecture: client computations build
  it inside their graph and assign weights to its variables, which trains as fast as a plain
  Keras loop (TFF's functional models cost ~25% more per step here).
  """
  name: str
  architecture: architectures.Builder
  input_shape: tuple[int, ...]
  num_classes: int
  initial_weights: tff.learning.models.ModelWeights

  def keras(self) -> tf.keras.Model:
    """A new instance of the architecture, its variables zero: every caller overwrites them,
    and in a client computation drawing random initial values cost each client and round
    ~3% of the worker's CPU (2NN)."""
    with _global_random_state_kept(), tf.variable_creator_scope(_zero_initial_value):
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

  def num_parameters(self) -> int:
    """Number of trainable parameters."""
    return sum(int(w.size) for w in self.initial_weights.trainable)


def loss_fn() -> tf.keras.losses.Loss:
  """The training and evaluation loss: mean softmax cross-entropy on logits."""
  return tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def element_spec(input_shape: tuple[int, ...]) -> collections.OrderedDict:
  """Spec of one batch: `x` float32 images, `y` int32 labels (see datasets.base)."""
  return collections.OrderedDict(
      x=tf.TensorSpec([None, *input_shape], tf.float32),
      y=tf.TensorSpec([None], tf.int32),
  )


@contextlib.contextmanager
def _global_random_state_kept() -> Iterator[None]:
  """Restores Python's and numpy's global RNG states (Keras draws legacy seeds from them)."""
  python_state, numpy_state = random.getstate(), np.random.get_state()
  try:
    yield
  finally:
    random.setstate(python_state)
    np.random.set_state(numpy_state)


def _zero_initial_value(next_creator, **kwargs) -> tf.Variable:
  """A variable creator giving a new variable of known shape zeros as initial value (Keras
  gives the shape when building in a graph; eagerly it does not, and the initializer runs)."""
  shape = kwargs.get('shape')
  if shape is not None and tf.TensorShape(shape).is_fully_defined():
    kwargs['initial_value'] = tf.zeros(shape, kwargs.get('dtype') or tf.float32)
  return next_creator(**kwargs)


def _seeded_initializer(initializer, seed: int):
  """A copy of a Keras initializer with its own seed (initializers without randomness as is)."""
  config = initializer.get_config()
  if 'seed' not in config:
    return initializer
  return type(initializer).from_config({**config, 'seed': seed})


def seed_weights(keras_model: tf.keras.Model, seed: int) -> tf.keras.Model:
  """Re-draws every weight with its layer's initializer, seeded from (seed, layer, weight)."""
  for layer_index, layer in enumerate(keras_model.layers):
    for weight in layer.weights:
      short_name = weight.name.split('/')[-1].split(':')[0]
      initializer = getattr(layer, f'{short_name}_initializer', None)
      if initializer is None:
        raise ValueError(f'cannot seed weight {weight.name!r} of layer {layer.name!r}: it has no '
                         f'{short_name}_initializer attribute')
      weight_seed = seeds.derive(seed, purpose='model_init', client=f'{layer_index}/{short_name}')
      weight.assign(_seeded_initializer(initializer, weight_seed % (2**31))(
          weight.shape, weight.dtype))
  return keras_model


def from_architecture(name: str, architecture: architectures.Builder, *,
                      input_shape: tuple[int, ...], num_classes: int, seed: int) -> Model:
  """A `Model` of any Keras architecture, initial weights fixed by `seed`."""
  with _global_random_state_kept():
    keras_model = seed_weights(architecture(tuple(input_shape), num_classes), seed)
  return Model(
      name=name, architecture=architecture, input_shape=tuple(input_shape),
      num_classes=num_classes,
      initial_weights=tff.learning.models.ModelWeights(
          tuple(v.numpy() for v in keras_model.trainable_weights),
          tuple(v.numpy() for v in keras_model.non_trainable_weights)))


def build(name: str, *, input_shape: tuple[int, ...], num_classes: int, seed: int,
          hidden_units: Optional[tuple[int, ...]] = None) -> Model:
  """Registered model `name` (`--model`), initial weights fixed by `seed`."""
  architecture = architectures.ARCHITECTURES.get(name).builder(hidden_units)
  return from_architecture(name, architecture, input_shape=input_shape,
                           num_classes=num_classes, seed=seed)


def build_keras(name: str, *, input_shape: tuple[int, ...], num_classes: int, seed: int,
                hidden_units: Optional[tuple[int, ...]] = None) -> tf.keras.Model:
  """Registered model `name` as a Keras model holding the seeded initial weights."""
  model = build(name, input_shape=input_shape, num_classes=num_classes, seed=seed,
                hidden_units=hidden_units)
  keras_model = model.keras()
  keras_model.set_weights(list(model.initial_weights.trainable)
                          + list(model.initial_weights.non_trainable))
  return keras_model


def functional(model: Model) -> tff.learning.models.FunctionalModel:
  """The model as a TFF functional model (same initial weights), for TFF's own algorithms."""
  keras_model = model.keras()
  for variables, values in zip((keras_model.trainable_weights, keras_model.non_trainable_weights),
                               model.initial_weights):
    for variable, value in zip(variables, values):
      variable.assign(value)
  return tff.learning.models.functional_model_from_keras(
      keras_model, loss_fn=loss_fn(), input_spec=model.input_spec)
