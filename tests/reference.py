"""Independent references for client-update tests: softmax regression and its numpy SGD.

Softmax regression on 4 features is small enough to differentiate by hand, so every client
update of the package can be checked against `numpy_sgd` to float tolerance.
"""

import collections
from typing import Optional

import numpy as np
import tensorflow as tf

from tff_experiments.models import model as model_lib

NUM_CLASSES = 3
SHAPE = (2, 2, 1)


def softmax_regression(input_shape, num_classes):
  return tf.keras.Sequential([
      tf.keras.layers.InputLayer(input_shape=input_shape),
      tf.keras.layers.Flatten(),
      tf.keras.layers.Dense(num_classes, bias_initializer='random_normal'),
  ])


def linear_model(seed: int) -> model_lib.Model:
  """Softmax regression as a package `Model`, initial weights fixed by `seed`."""
  return model_lib.from_architecture('softmax_regression', softmax_regression,
                                     input_shape=SHAPE, num_classes=NUM_CLASSES, seed=seed)


def client_arrays(num_examples: int, seed: int):
  rng = np.random.default_rng(seed)
  x = rng.uniform(size=(num_examples, *SHAPE)).astype(np.float32)
  y = rng.integers(0, NUM_CLASSES, size=num_examples).astype(np.int32)
  return x, y


def dataset(x, y, batch_size):
  return tf.data.Dataset.from_tensor_slices(collections.OrderedDict(x=x, y=y)).batch(batch_size)


def numpy_sgd(w, b, x, y, *, lr, batch_size, mu: float = 0.0,
              max_steps: Optional[int] = None, momentum: float = 0.0):
  """Mini-batch SGD on mean softmax cross-entropy (+ mu/2 ||(w, b) - (w0, b0)||^2), with
  heavy-ball momentum as PyTorch's SGD (buf = momentum * buf + grad; param -= lr * buf)."""
  w0, b0 = w.copy(), b.copy()
  w, b = w.copy(), b.copy()
  buf_w, buf_b = np.zeros_like(w, np.float64), np.zeros_like(b, np.float64)
  for step, start in enumerate(range(0, len(y), batch_size)):
    if max_steps is not None and step >= max_steps:
      break
    xb = x[start:start + batch_size].reshape(-1, w.shape[0]).astype(np.float64)
    yb = y[start:start + batch_size]
    logits = xb @ w + b
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(yb)), yb] -= 1.0
    grad_w, grad_b = xb.T @ p / len(yb) + mu * (w - w0), p.mean(axis=0) + mu * (b - b0)
    buf_w, buf_b = momentum * buf_w + grad_w, momentum * buf_b + grad_b
    w, b = w - lr * buf_w, b - lr * buf_b
  return w, b
