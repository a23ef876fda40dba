"""Fixed-point encoding modulo 2^b and PRG masks, as TF functions (run inside TFF computations).

Encoding. A client's contribution v (a structure of float tensors) is clipped per coordinate to
[-C, C] (the L-infinity ball: every coordinate of an update L2-clipped to C already fits, so a
DP record passes unchanged) and scaled to integers q = round(v * L / C), |q| <= L, with
L = floor((2^(b-1) - 1) / n) levels for a cohort of n clients. A sum of at most n such
integers lies in [-(2^(b-1) - 1), 2^(b-1) - 1]: it never wraps modulo 2^b, so the server decodes
the sum exactly as a signed integer, times C / L. Each client's rounding error is at most
C / (2L) per coordinate. Integers (client weights) use C = L: exact up to L.

Masks. PRG(seed) is TF's stateless Philox stream keyed by a 128-bit seed (folded with the
stream, value or weight, and the tensor's index), reduced modulo 2^b: uniform on Z_{2^b}. A
masked vector is (q + sum of signed masks) mod 2^b, all in int64 (b <= 32, so sums of up to
2^31 vectors never overflow).
"""

import tensorflow as tf

MAX_BITS = 32


def modulus_mask(bits: int) -> int:
  """2^b - 1: `bitwise_and` with it is the residue modulo 2^b (also of negative int64)."""
  return (1 << bits) - 1


def wrap(x: tf.Tensor, bits: int) -> tf.Tensor:
  """x mod 2^b, in [0, 2^b)."""
  return tf.bitwise.bitwise_and(x, tf.constant(modulus_mask(bits), tf.int64))


def levels(bits: int, participants) -> tf.Tensor:
  """L = floor((2^(b-1) - 1) / n) (int64): each client's largest |q|; 0 if n is too large."""
  n = tf.maximum(tf.cast(participants, tf.int64), 1)
  return tf.math.floordiv(tf.constant((1 << (bits - 1)) - 1, tf.int64), n)


def encode(value, *, clip, levels_: tf.Tensor, bits: int):
  """Each float tensor clipped to [-clip, clip], scaled by L / clip, rounded, mod 2^b."""
  clip = tf.cast(clip, tf.float64)
  scale = tf.cast(levels_, tf.float64) / clip

  def one(t):
    clipped = tf.clip_by_value(tf.cast(t, tf.float64), -clip, clip)
    return wrap(tf.cast(tf.math.round(clipped * scale), tf.int64), bits)

  return tf.nest.map_structure(one, value)


def decode(total, *, clip, levels_: tf.Tensor, bits: int, dtypes):
  """A sum mod 2^b (of at most n encodings) back to floats of `dtypes` (a matching structure)."""
  half = tf.constant(1 << (bits - 1), tf.int64)
  step = tf.cast(clip, tf.float64) / tf.cast(levels_, tf.float64)

  def one(t, dtype):
    signed = tf.where(t >= half, t - 2 * half, t)
    return tf.cast(tf.cast(signed, tf.float64) * step, dtype)

  return tf.nest.map_structure(one, total, dtypes)


def prg(seed: tf.Tensor, *, stream: int, index: int, shape, bits: int) -> tf.Tensor:
  """Uniform int64 on [0, 2^b) of `shape`, a function of (seed, stream, index) only."""
  key = tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64),
                                                 tf.constant(stream, tf.int64))
  key = tf.random.experimental.stateless_fold_in(key, tf.constant(index, tf.int64))
  draws = tf.random.stateless_uniform(shape, seed=key, minval=None, maxval=None,
                                      dtype=tf.int64)
  return wrap(draws, bits)


def masks(seed: tf.Tensor, like, *, stream: int, bits: int):
  """PRG(seed) shaped like each tensor of the structure `like`."""
  leaves = tf.nest.flatten(like)
  return tf.nest.pack_sequence_as(
      like, [prg(seed, stream=stream, index=i, shape=tf.shape(t), bits=bits)
             for i, t in enumerate(leaves)])


def signed_mask_sum(seeds: tf.Tensor, signs: tf.Tensor, like, *, stream: int, bits: int):
  """sum_k signs[k] * PRG(seeds[k]) mod 2^b, shaped like `like` (k may be 0)."""
  leaves = tf.nest.flatten(like)

  def add(total, elem):
    seed, sign = elem
    return [t + sign * prg(seed, stream=stream, index=i, shape=tf.shape(leaf), bits=bits)
            for i, (t, leaf) in enumerate(zip(total, leaves))]

  initial = [tf.zeros(tf.shape(leaf), tf.int64) for leaf in leaves]
  total = tf.foldl(add, (seeds, signs), initializer=initial)
  return tf.nest.pack_sequence_as(like, [wrap(t, bits) for t in total])


def add_mod(a, b, bits: int, *, subtract: bool = False):
  """a + b (or a - b) mod 2^b, tensor by tensor."""
  op = tf.subtract if subtract else tf.add
  return tf.nest.map_structure(lambda x, y: wrap(op(x, y), bits), a, b)
