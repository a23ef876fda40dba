"""tensorflow-privacy DP queries whose noise is seeded by (run seed, round): resumable DP.

tensorflow-privacy's `GaussianSumQuery` draws its noise from unseeded ops, so a DP run could be
neither repeated nor resumed exactly. These queries are the same mechanisms (subclasses, so
`QuantileAdaptiveClipSumQuery` and TFF's `DifferentiallyPrivateFactory` use them unchanged)
with the noise drawn by stateless ops from a seed pair kept in the query's global state: the
run's seed and a counter that advances every time noise is released. The global state is part
of the learning process state, so checkpoints carry it.
"""

import collections

import dp_accounting
import tensorflow as tf
import tensorflow_privacy as tfp
from tensorflow_privacy.privacy.dp_query import quantile_estimator_query

from tff_experiments.core import noise


def _initial_seed(seed: int) -> tf.Tensor:
  return tf.constant([seed, 0], tf.int64)


def _advance(noise_seed: tf.Tensor) -> tf.Tensor:
  return noise_seed + tf.constant([0, 1], tf.int64)


def l1_clip(structure, clip):
  """`structure` scaled down so that its global L1 norm is <= clip; and that norm before."""
  leaves = tf.nest.flatten(structure)
  norm = tf.add_n([tf.reduce_sum(tf.abs(t)) for t in leaves])
  factor = tf.minimum(1.0, tf.math.divide_no_nan(tf.cast(clip, norm.dtype), norm))
  return tf.nest.pack_sequence_as(structure, [t * factor for t in leaves]), norm


def _release(sample_state, global_state, drawn, event):
  """(sum + the `drawn` noise, the state with its noise seed advanced, the release's DP
  event)."""
  result = tf.nest.map_structure(tf.add, sample_state, drawn)
  return result, global_state._replace(noise_seed=_advance(global_state.noise_seed)), event


class SeededGaussianSumQuery(tfp.GaussianSumQuery):
  """L2 clipping to `l2_norm_clip`, sum, N(0, stddev^2) noise seeded from the state."""

  _GlobalState = collections.namedtuple('_GlobalState',
                                        ['l2_norm_clip', 'stddev', 'noise_seed'])

  def __init__(self, l2_norm_clip: float, stddev: float, *, seed: int):
    super().__init__(l2_norm_clip, stddev)
    self._seed = seed

  def make_global_state(self, l2_norm_clip, stddev, noise_seed=None):
    """The global state; a fresh noise seed (counter 0) unless one is given."""
    return self._GlobalState(
        tf.cast(l2_norm_clip, tf.float32), tf.cast(stddev, tf.float32),
        _initial_seed(self._seed) if noise_seed is None else noise_seed)

  def get_noised_result(self, sample_state, global_state):
    return _release(sample_state, global_state, noise.gaussian_noise(
        sample_state, stddev=global_state.stddev, seed=global_state.noise_seed),
                    dp_accounting.GaussianDpEvent(global_state.stddev / global_state.l2_norm_clip))


class SeededLaplaceSumQuery(tfp.SumAggregationDPQuery):
  """L1 clipping to `l1_norm_clip`, sum, Laplace(scale) noise per coordinate (pure epsilon:
  one release is (l1_norm_clip / scale)-DP under add/remove of one record)."""

  _GlobalState = collections.namedtuple('_GlobalState', ['l1_norm_clip', 'scale', 'noise_seed'])

  def __init__(self, l1_norm_clip: float, scale: float, *, seed: int):
    self._l1_norm_clip, self._scale, self._seed = l1_norm_clip, scale, seed

  def initial_global_state(self):
    return self._GlobalState(tf.cast(self._l1_norm_clip, tf.float32),
                             tf.cast(self._scale, tf.float32), _initial_seed(self._seed))

  def derive_sample_params(self, global_state):
    return global_state.l1_norm_clip

  def preprocess_record(self, params, record):
    return l1_clip(record, params)[0]

  def get_noised_result(self, sample_state, global_state):
    return _release(sample_state, global_state, noise.laplace_noise(
        sample_state, scale=global_state.scale, seed=global_state.noise_seed),
                    dp_accounting.LaplaceDpEvent(global_state.scale / global_state.l1_norm_clip))

  def derive_metrics(self, global_state):
    return collections.OrderedDict(clip=global_state.l1_norm_clip)


class _SeededQuantileEstimatorQuery(quantile_estimator_query.QuantileEstimatorQuery):
  """Andrew et al.'s private quantile estimate with a seeded count noise (a second stream)."""

  def __init__(self, *args, seed: int, **kwargs):
    self._seed = seed
    super().__init__(*args, **kwargs)

  def _construct_below_estimate_query(self, below_estimate_stddev, expected_num_records):
    return tfp.NormalizedQuery(
        SeededGaussianSumQuery(l2_norm_clip=0.5, stddev=below_estimate_stddev,
                               seed=self._seed),
        denominator=expected_num_records)


class SeededQuantileAdaptiveClipSumQuery(tfp.QuantileAdaptiveClipSumQuery):
  """Adaptive clipping (Andrew et al. 2021) over the seeded Gaussian sum and quantile queries."""

  def __init__(self, *, initial_l2_norm_clip: float, noise_multiplier: float,
               target_unclipped_quantile: float, learning_rate: float,
               clipped_count_stddev: float, expected_num_records: float, seed: int,
               count_seed: int):
    super().__init__(initial_l2_norm_clip, noise_multiplier, target_unclipped_quantile,
                     learning_rate, clipped_count_stddev, expected_num_records,
                     geometric_update=True)
    self._sum_query = SeededGaussianSumQuery(
        initial_l2_norm_clip, noise_multiplier * initial_l2_norm_clip, seed=seed)
    self._quantile_estimator_query = _SeededQuantileEstimatorQuery(
        initial_l2_norm_clip, target_unclipped_quantile, learning_rate, clipped_count_stddev,
        expected_num_records, geometric_update=True, seed=count_seed)

  def get_noised_result(self, sample_state, global_state):
    """The parent's result, with the sum query's noise seed carried to the next round (the
    parent rebuilds that state from the new clip alone)."""
    result, new_state, event = super().get_noised_result(sample_state, global_state)
    sum_state = new_state.sum_state._replace(
        noise_seed=_advance(global_state.sum_state.noise_seed))
    return result, new_state._replace(sum_state=sum_state), event
