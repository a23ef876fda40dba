"""Fixed-point encoding modulo 2^b and PRG masks, as TF functions (run inside TFF computations).

Encoding. Each tensor t of a client's contribution v (a structure of float tensors) has a range
R_t (`ranges`: measured each round, or a fixed clip): v is clipped per coordinate to [-R_t, R_t]
(the L-infinity ball: a DP record L2-clipped to R already fits) and scaled to x = v * L / R_t
with L = floor((2^(b-1) - 1) / n) levels for a cohort of n clients, then rounded
stochastically: q = floor(x) + [u < x - floor(x)] with u uniform from the client's own rounding
seed (never from its data), so E[q] = x (unbiased) and |q| <= L. A sum of at most n such
integers lies in [-(2^(b-1) - 1), 2^(b-1) - 1]: it never wraps modulo 2^b, so the server decodes
the sum exactly as a signed integer, times R_t / L. Each client's rounding error is below one
step R_t / L per coordinate, with variance p (1 - p) step^2 <= step^2 / 4, p = x - floor(x).
Integers (client weights) use R = L: exact up to L.

Masks. PRG(seed) is TF's stateless Philox stream keyed by a 128-bit seed (folded with the
stream: value, weight or range histogram; and the tensor's index), reduced modulo 2^b: uniform
on Z_{2^b}. A masked vector is (q + sum of signed masks) mod 2^b, all in int64 (b <= 32, so
sums of up to 2^31 vectors never overflow).
"""

import tensorflow as tf

MAX_BITS = 32
# Fewest levels per client (L) accepted. With 0 no value survives (the sum of n encodings must
# not wrap mod 2^b); L = 1 (stochastic ternary on the measured range) still trained digits as
# 32 bits did (README, "Secure aggregation").
MIN_LEVELS = 1


def modulus_mask(bits: int) -> int:
  """2^b - 1: `bitwise_and` with it is the residue modulo 2^b (also of negative int64)."""
  return (1 << bits) - 1


def wrap(x: tf.Tensor, bits: int) -> tf.Tensor:
  """x mod 2^b, in [0, 2^b)."""
  return tf.bitwise.bitwise_and(x, tf.constant(modulus_mask(bits), tf.int64))


def level_count(bits: int, clients: int) -> int:
  """L = floor((2^(b-1) - 1) / n), in Python (for checks before a run)."""
  return ((1 << (bits - 1)) - 1) // max(clients, 1)


def too_few_levels(bits: int, clients: int, cohort: str) -> str:
  """The one-line refusal of `bits` for `clients` clients (`cohort` says whose: a flag, a round)."""
  return (f'--secagg_bits={bits} leaves each of {cohort} clients L = floor((2^{bits - 1} - 1) / '
          f'{clients}) = {level_count(bits, clients)} levels, fewer than the {MIN_LEVELS} needed '
          f'so that their encodings cannot wrap around mod 2^{bits}: raise --secagg_bits or '
          'lower --clients_per_round')


def levels(bits: int, participants) -> tf.Tensor:
  """L = floor((2^(b-1) - 1) / n) (int64): each client's largest |q|; 0 if n is too large."""
  n = tf.maximum(tf.cast(participants, tf.int64), 1)
  return tf.math.floordiv(tf.constant((1 << (bits - 1)) - 1, tf.int64), n)


def _keyed(seed: tf.Tensor, stream: int, index: int) -> tf.Tensor:
  """A stateless-op key from (seed, stream, index)."""
  key = tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64),
                                                 tf.constant(stream, tf.int64))
  return tf.random.experimental.stateless_fold_in(key, tf.constant(index, tf.int64))


def encode(value, *, ranges, levels_: tf.Tensor, bits: int, rounding_seed: tf.Tensor,
           stream: int):
  """(encodings mod 2^b, the squared error of what they decode to): tensor i clipped to
  [-ranges[i], ranges[i]], scaled by L / ranges[i], rounded stochastically with uniforms from
  (rounding_seed, stream, i)."""
  levels_f = tf.cast(levels_, tf.float64)
  encoded, errors = [], []
  for i, t in enumerate(tf.nest.flatten(value)):
    exact = tf.cast(t, tf.float64)
    scale = levels_f / tf.cast(ranges[i], tf.float64)
    scaled = tf.clip_by_value(exact * scale, -levels_f, levels_f)
    low = tf.math.floor(scaled)
    u = tf.random.stateless_uniform(tf.shape(scaled), seed=_keyed(rounding_seed, stream, i),
                                    dtype=tf.float64)
    q = low + tf.cast(u < scaled - low, tf.float64)
    errors.append(tf.reduce_sum(tf.square(q / scale - exact)))
    encoded.append(wrap(tf.cast(q, tf.int64), bits))
  return tf.nest.pack_sequence_as(value, encoded), tf.add_n(errors)


def signed(t: tf.Tensor, bits: int) -> tf.Tensor:
  """A residue mod 2^b as the signed integer in [-2^(b-1), 2^(b-1)) it stands for."""
  half = tf.constant(1 << (bits - 1), tf.int64)
  return tf.where(t >= half, t - 2 * half, t)


def decode(total, *, ranges, levels_: tf.Tensor, bits: int, dtypes):
  """A sum mod 2^b (of at most n encodings) back to floats of `dtypes` (a matching structure),
  tensor i times ranges[i] / L."""
  levels_f = tf.cast(levels_, tf.float64)
  out = []
  for i, (t, dtype) in enumerate(zip(tf.nest.flatten(total), tf.nest.flatten(dtypes))):
    step = tf.cast(ranges[i], tf.float64) / levels_f
    out.append(tf.cast(tf.cast(signed(t, bits), tf.float64) * step, dtype))
  return tf.nest.pack_sequence_as(total, out)


def prg(seed: tf.Tensor, *, stream: int, index: int, shape, bits: int) -> tf.Tensor:
  """Uniform int64 on [0, 2^b) of `shape`, a function of (seed, stream, index) only."""
  draws = tf.random.stateless_uniform(shape, seed=_keyed(seed, stream, index), minval=None,
                                      maxval=None, dtype=tf.int64)
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
