"""Synthetic(alpha, beta) of the FedProx paper (Li et al. 2020, Sec. 5.1; LEAF's `synthetic`).

Client k of a population draws u_k ~ N(0, alpha^2), B_k ~ N(0, beta^2), a softmax model
W_k ~ N(u_k, 1) [10 x 60], b_k ~ N(u_k, 1) [10], and a feature mean v_k ~ N(B_k, 1) [60]; its
examples are x ~ N(v_k, Sigma) with Sigma diagonal, Sigma_jj = j^-1.2, labelled
y = argmax(W_k x + b_k). alpha sets how much the clients' models differ, beta how much their
features do. As in FedProx's `generate_synthetic.py` (the data its results come from), alpha
and beta are standard deviations: numpy's `normal(0, alpha)`; the paper writes N(0, alpha).
The iid variant (`iid`; FedProx's `synthetic_iid`) has one W, b ~ N(0, 1) for all clients and
v_k = 0. A client holds n_k = floor(lognormal(4, 2)) + 50 examples (FedProx's power law), at
most `max_examples`: the tail is heavy (the largest of 10^5 clients draws ~3 x 10^5), and the
cap bounds what one client costs a round. floor(0.9 n_k) of them train, the rest are the
client's test part (FedProx's 90/10 split of each client).

Scale: nothing is stored or drawn up front. Every value above is a stateless TF draw keyed by
(--split_seed, k), made inside the TFF worker when the client's dataset is read, so preparing
10^5 clients is making their id strings, and the serialized dataset computation holds only a
few scalars (no per-client table): a round costs the same at any population. The centralized
test set is the test parts of clients 0 .. min(N, 1000) - 1, drawn in the driver by the same
TF function; clients are exchangeable draws, so this is a random sample of the population.
"""

from collections.abc import Mapping
import collections
import dataclasses
import math
import numbers
from typing import Any

import numpy as np
import tensorflow as tf

from datasets import base
from datasets import whole_client_data

NUM_CLASSES = 10
NUM_FEATURES = 60
# Clients whose test parts make the centralized test set (all of them below this).
TEST_CLIENTS = 1000
# n_k = floor(lognormal(_LOG_MEAN, _LOG_SIGMA)) + MIN_EXAMPLES (FedProx's generator).
_LOG_MEAN, _LOG_SIGMA = 4.0, 2.0
MIN_EXAMPLES = 50
_TRAIN_TENTHS = 9  # floor(0.9 n) train examples, FedProx's `int(0.9 * num_samples)`.
# Sigma_jj = j^-1.2, j = 1..60: the per-coordinate variance of x.
VARIANCES = np.arange(1, NUM_FEATURES + 1, dtype=np.float64) ** -1.2
_ALG = 'philox'  # Named, not 'auto_select', so draws do not depend on the device.
# Second words of the stateless keys: the clients' draws, and the iid variant's shared model.
_CLIENT_STREAM, _SHARED_STREAM = 1, 2
# The independent draws of one client, one key each.
_PURPOSES = ('size', 'u', 'B', 'W', 'b', 'v', 'train', 'test')
# Largest |z| of TF's float32 normal draws: Box-Muller with its uniform clamped to >= 1e-7
# (BoxMullerFloat in tensorflow/tsl/lib/random/random_distributions_utils.h), sqrt(-2 ln 1e-7).
MAX_NORMAL = math.sqrt(-2.0 * math.log(1e-7))


def _largest_scale() -> float:
  """The largest alpha and beta whose draws cannot overflow the float32 generator.

  With every normal draw |z| <= Z = MAX_NORMAL: |w|, |b| <= (alpha + 1) Z; |v| <= (beta + 1) Z
  and |x| <= (beta + 2) Z (noise scaled by sqrt(Sigma_jj) <= 1); so a logit W x + b of the 60
  features is at most (alpha + 1) Z (60 (beta + 2) Z + 1). Both at a (t = a + 1), that is
  60 Z^2 t^2 + (60 Z^2 + Z) t; solved equal to float32's largest value, then rounded down to
  two significant digits (4.1e17; the 4% margin covers float32 rounding in the sums). Beyond
  it a logit can be infinite and its argmax label meaningless (1e300 is infinite already).
  """
  z, limit = MAX_NORMAL, float(np.finfo(np.float32).max)
  quadratic, linear = NUM_FEATURES * z * z, NUM_FEATURES * z * z + z
  t = (-linear + math.sqrt(linear * linear + 4.0 * quadratic * limit)) / (2.0 * quadratic)
  exponent = math.floor(math.log10(t - 1.0)) - 1
  return float(f'{math.floor((t - 1.0) / 10.0 ** exponent)}e{exponent}')


# Largest accepted --synthetic_alpha and --synthetic_beta (see `_largest_scale`).
MAX_SCALE = _largest_scale()


@dataclasses.dataclass(frozen=True)
class Generator:
  """Synthetic(alpha, beta) drawn from `seed`: each draw a pure function of (seed, client).

  The methods are TF functions of a client index (int64 scalar tensor); the worker calls them
  inside the client's dataset, the driver eagerly for the test set, tests to check the model.
  The defaults are FedProx's Synthetic(1, 1) and the flags' defaults.
  """
  seed: int
  alpha: float = 1.0
  beta: float = 1.0
  iid: bool = False
  max_examples: int = 10_000

  def _keys(self, index) -> dict[str, tf.Tensor]:
    """One stateless key per purpose, for client `index`."""
    client = tf.random.experimental.stateless_fold_in(
        tf.constant([self.seed, _CLIENT_STREAM], tf.int64), tf.cast(index, tf.int64), alg=_ALG)
    keys = tf.random.experimental.stateless_split(client, num=len(_PURPOSES), alg=_ALG)
    return dict(zip(_PURPOSES, tf.unstack(keys)))

  def num_examples(self, index) -> tf.Tensor:
    """n_k (int64): floor(lognormal(4, 2)) + 50, at most max_examples."""
    return self._num_examples(self._keys(index))

  def _num_examples(self, keys: dict[str, tf.Tensor]) -> tf.Tensor:
    z = tf.random.stateless_normal([], keys['size'], dtype=tf.float64, alg=_ALG)
    # exp(40) still fits int64: the clamp only keeps a (never seen) z > 18 from overflowing.
    drawn = tf.cast(tf.floor(tf.exp(tf.minimum(_LOG_MEAN + _LOG_SIGMA * z, 40.0))), tf.int64)
    return tf.minimum(drawn + MIN_EXAMPLES, self.max_examples)

  def client_model(self, index) -> collections.OrderedDict:
    """OrderedDict(w [10, 60], b [10], v [60]) of client `index` (float32)."""
    return self._client_model(self._keys(index))

  def _client_model(self, keys: dict[str, tf.Tensor]) -> collections.OrderedDict:
    normal = lambda shape, key: tf.random.stateless_normal(shape, key, alg=_ALG)
    if self.iid:
      shared = tf.unstack(tf.random.experimental.stateless_split(
          tf.constant([self.seed, _SHARED_STREAM], tf.int64), num=2, alg=_ALG))
      return collections.OrderedDict(w=normal([NUM_CLASSES, NUM_FEATURES], shared[0]),
                                     b=normal([NUM_CLASSES], shared[1]),
                                     v=tf.zeros([NUM_FEATURES]))
    u = self.alpha * normal([], keys['u'])
    feature_shift = self.beta * normal([], keys['B'])
    return collections.OrderedDict(w=u + normal([NUM_CLASSES, NUM_FEATURES], keys['W']),
                                   b=u + normal([NUM_CLASSES], keys['b']),
                                   v=feature_shift + normal([NUM_FEATURES], keys['v']))

  def examples(self, index, *, part: str) -> collections.OrderedDict:
    """Client `index`'s `part`: OrderedDict(x float32 [m, 60], y int32 [m]) of its
    floor(0.9 n_k) training examples ('train') or the other n_k - floor(0.9 n_k) ('test').

    Each part has its own key, so drawing one never draws the other (the driver's test set
    costs a tenth of the clients' data); all n_k examples are still i.i.d. given the client.
    """
    keys = self._keys(index)
    model = self._client_model(keys)
    n = self._num_examples(keys)
    size = {'train': _num_train(n), 'test': n - _num_train(n)}[part]
    noise = tf.random.stateless_normal(tf.stack([size, NUM_FEATURES]), keys[part], alg=_ALG)
    x = model['v'] + noise * tf.constant(np.sqrt(VARIANCES), tf.float32)
    y = tf.argmax(tf.linalg.matmul(x, model['w'], transpose_b=True) + model['b'], axis=1,
                  output_type=tf.int32)
    return collections.OrderedDict(x=x, y=y)


def _num_train(num_examples: tf.Tensor) -> tf.Tensor:
  """floor(0.9 n): how many of n examples train (FedProx's `int(0.9 * num_samples)`)."""
  return _TRAIN_TENTHS * num_examples // 10


def client_ids(num_clients: int) -> list[str]:
  """'0000' .. N-1, zero-padded so that sorted order is index order; the index is the id."""
  width = max(4, len(str(num_clients - 1)))
  return [f'{i:0{width}d}' for i in range(num_clients)]


def client_data(generator: Generator, num_clients: int) -> whole_client_data.WholeClientData:
  """The population as a ClientData drawing a client's training part in the worker.

  Holds the id list in the driver (the sampler's) and closes over nothing but the generator's
  scalars and `num_clients`.
  """
  @tf.autograph.experimental.do_not_convert
  def examples_fn(client_id) -> collections.OrderedDict:
    index = tf.strings.to_number(client_id, out_type=tf.int64)
    in_population = tf.debugging.assert_less(
        index, tf.constant(num_clients, tf.int64),
        message='synthetic client id beyond --num_clients')
    with tf.control_dependencies([in_population]):
      return generator.examples(tf.identity(index), part='train')

  return whole_client_data.WholeClientData(client_ids(num_clients), examples_fn,
                                           where=f'synthetic clients 0..{num_clients - 1}')


def test_set(generator: Generator, num_clients: int) -> tuple[np.ndarray, np.ndarray]:
  """(x float32 [M, 60], y int32 [M]): the test parts of the first min(N, 1000) clients, in
  client order, drawn by the function that draws the clients' training parts in the worker."""
  draw = tf.autograph.experimental.do_not_convert(lambda i: generator.examples(i, part='test'))
  clients = min(num_clients, TEST_CLIENTS)
  parts = next(iter(tf.data.Dataset.range(clients).map(draw).ragged_batch(clients)))
  return parts['x'].flat_values.numpy(), parts['y'].flat_values.numpy()


def load(*, data_dir: str | None, cache_dir: str, partition: str, num_clients: int,
         partition_params: Mapping[str, Any], seed: int, only_digits: bool, alpha: float,
         beta: float, iid: bool, max_examples: int) -> base.FederatedData:
  """Registry loader: `num_clients` Synthetic(alpha, beta) clients drawn from `seed`
  (--split_seed). Reads and writes no files. The registry has checked that `partition` is
  'natural' (so partition_params are none); data_dir, cache_dir and only_digits are unused."""
  del data_dir, cache_dir, partition, partition_params, only_digits
  _check(num_clients=num_clients, seed=seed, alpha=alpha, beta=beta, max_examples=max_examples)
  generator = Generator(seed=int(seed), alpha=float(alpha), beta=float(beta), iid=bool(iid),
                        max_examples=int(max_examples))
  test_x, test_y = test_set(generator, num_clients)
  return base.FederatedData(train=client_data(generator, num_clients), test_x=test_x,
                            test_y=test_y, num_classes=NUM_CLASSES)


def _check(*, num_clients: int, seed: int, alpha: float, beta: float, max_examples: int) -> None:
  """DataError naming the flag of the first bad argument."""
  integer = lambda v: isinstance(v, numbers.Integral) and not isinstance(v, bool)
  if not integer(num_clients) or num_clients < 1:
    raise base.DataError(f'--num_clients must be an integer >= 1, got {num_clients!r}')
  if not integer(seed) or not 0 <= seed < 2**63:
    raise base.DataError(f'--split_seed must be a non-negative integer, got {seed!r}')
  for flag, value in (('synthetic_alpha', alpha), ('synthetic_beta', beta)):
    if not isinstance(value, numbers.Real) or not 0 <= value <= MAX_SCALE:
      raise base.DataError(f'--{flag} must be in [0, {MAX_SCALE:g}] (larger values overflow '
                           f'the generator\'s float32 logits), got {value!r}')
  if not integer(max_examples) or max_examples < MIN_EXAMPLES:
    raise base.DataError(f'--synthetic_max_examples must be an integer >= {MIN_EXAMPLES} (the '
                         f'fewest examples a client draws), got {max_examples!r}')
