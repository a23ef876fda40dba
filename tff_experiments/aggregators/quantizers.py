"""b-bit uniform quantization of one tensor, with optional randomized Hadamard rotation.

Pure TF functions (graph- and eager-safe), used inside the quantization layer's client
computation and tested on their own:

- `quantize`: the tensor's range [min, max] is cut into 2^b - 1 equal steps; each value is
  rounded to a neighbouring level, stochastically (up with probability equal to its distance
  from the lower level, so the dequantized value is an unbiased estimate of the input, and its
  variance is at most step^2 / 4 per coordinate: QSGD; Suresh et al. 2017) or to the nearest
  level (deterministic). Side information: min and max as float32.
- `rotate` / `unrotate`: y = H D x / sqrt(d) with D a seeded random +-1 diagonal and H the
  Walsh-Hadamard matrix, applied to blocks of d = min(2^k >= size, 4096) elements (x zero-padded
  to whole blocks, so padding costs < 1 block per tensor instead of up to doubling it), and its
  exact inverse. Rotation spreads a spiky vector's energy over all coordinates, so the
  quantization range shrinks: error O(log d / (2^b - 1)^2) instead of O(d / (2^b - 1)^2)
  (Suresh et al. 2017).
- `entropy_bits`: what an entropy coder would need for the symbols (n times the empirical
  entropy of their histogram).

Every random draw is a stateless op of a seed pair given by the caller.
"""

import math

import tensorflow as tf


# Largest Hadamard block: bounds the padding of large tensors to < 4096 zeros.
MAX_BLOCK = 4096


def block_size(size: int) -> int:
  """The rotation block for a tensor of `size` elements: a power of two, at most MAX_BLOCK."""
  return min(MAX_BLOCK, 1 << max(0, math.ceil(math.log2(max(size, 1)))))


def padded_size(size: int) -> int:
  """Elements after padding a tensor of `size` to whole rotation blocks (what is sent)."""
  block = block_size(size)
  return -(-size // block) * block


def hadamard(x: tf.Tensor) -> tf.Tensor:
  """The normalized Walsh-Hadamard transform along the last axis (a power of two long).

  Orthonormal and symmetric, so it is its own inverse. O(d log d) by butterflies.
  """
  d = int(x.shape[-1])
  rows = tf.reshape(x, [-1, d])
  h = 1
  while h < d:
    pairs = tf.reshape(rows, [-1, d // (2 * h), 2, h])
    a, b = pairs[:, :, 0, :], pairs[:, :, 1, :]
    rows = tf.reshape(tf.stack([a + b, a - b], axis=2), [-1, d])
    h *= 2
  return tf.reshape(rows / math.sqrt(d), tf.shape(x))


def _signs(size: int, seed: tf.Tensor) -> tf.Tensor:
  bits = tf.random.stateless_uniform([size], seed=seed, minval=0, maxval=2, dtype=tf.int32)
  return tf.cast(2 * bits - 1, tf.float32)


def rotate(flat: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
  """Blockwise H D [flat, 0...] / sqrt(d): padded to whole blocks, then rotated (flat)."""
  size = int(flat.shape[0])
  padded, block = padded_size(size), block_size(size)
  signed = tf.pad(flat, [[0, padded - size]]) * _signs(padded, seed)
  return tf.reshape(hadamard(tf.reshape(signed, [-1, block])), [padded])


def unrotate(rotated: tf.Tensor, size: int, seed: tf.Tensor) -> tf.Tensor:
  """The inverse of `rotate`: blockwise D H y / sqrt(d), cut back to `size` elements."""
  padded, block = int(rotated.shape[0]), block_size(size)
  unmixed = tf.reshape(hadamard(tf.reshape(rotated, [-1, block])), [padded])
  return (unmixed * _signs(padded, seed))[:size]


def quantize(x: tf.Tensor, *, bits: int, stochastic: bool,
             seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
  """(symbols in [0, 2^bits - 1] as int32, min, max) of a float32 tensor."""
  levels = float(2**bits - 1)
  low, high = tf.reduce_min(x), tf.reduce_max(x)
  step = (high - low) / levels
  scaled = tf.math.divide_no_nan(x - low, step)  # In [0, levels]; all 0 when x is constant.
  if stochastic:
    noise = tf.random.stateless_uniform(tf.shape(x), seed=seed, dtype=tf.float32)
    symbols = tf.floor(scaled + noise)
  else:
    symbols = tf.round(scaled)
  return tf.cast(tf.clip_by_value(symbols, 0.0, levels), tf.int32), low, high


def dequantize(symbols: tf.Tensor, low: tf.Tensor, high: tf.Tensor, *, bits: int) -> tf.Tensor:
  """The float32 values the symbols stand for."""
  step = (high - low) / float(2**bits - 1)
  return low + tf.cast(symbols, tf.float32) * step


def entropy_bits(symbols: tf.Tensor, *, bits: int) -> tf.Tensor:
  """n * H(histogram of the symbols), in bits: an entropy coder's payload for them."""
  flat = tf.reshape(symbols, [-1])
  counts = tf.cast(tf.math.bincount(flat, minlength=2**bits, maxlength=2**bits), tf.float32)
  total = tf.reduce_sum(counts)
  p = tf.math.divide_no_nan(counts, total)
  return -total * tf.reduce_sum(tf.where(p > 0, p * tf.math.log(p), 0.0)) / math.log(2.0)


def quantize_dequantize(x: tf.Tensor, *, bits: int, stochastic: bool, rotation: bool,
                        seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
  """What the server decodes of one client tensor, and the symbols' entropy in bits.

  `seed` is a (2,) int64 pair; the rotation and the rounding draw from distinct derived pairs.
  """
  flat = tf.reshape(x, [-1])
  size = int(flat.shape[0])
  rotation_seed = tf.stack([seed[0], seed[1] + 1])
  rounding_seed = tf.stack([seed[0], seed[1] + 2])
  payload = rotate(flat, rotation_seed) if rotation else flat
  symbols, low, high = quantize(payload, bits=bits, stochastic=stochastic, seed=rounding_seed)
  decoded = dequantize(symbols, low, high, bits=bits)
  if rotation:
    decoded = unrotate(decoded, size, rotation_seed)
  return tf.reshape(decoded, tf.shape(x)), entropy_bits(symbols, bits=bits)
