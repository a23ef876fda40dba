"""DP aggregation layers: central DP-FedAvg (TFF's DP factory over seeded queries) and local DP.

Central (`--dp_mode=central`, the stack's mean): TFF's `DifferentiallyPrivateFactory` with a
`privacy.queries` query: each client's (decoded) update is clipped, the inner sum layers add
them, the server adds the noise once and divides by the expected cohort `--clients_per_round`
(a data-independent denominator, as DP-FedAvg requires, also under Poisson sampling or
drop-outs). Uplink quantization, an update layer, runs before: the clip applies to what the
server decodes, so the sensitivity is exactly the clip whatever the quantizer did.

Local (`--dp_mode=local`, an update layer): each client clips and noises its own update before
anything else touches it, the noise seeded by the client's update seed (from (seed, round,
client): `seeded`); quantization after it is post-processing and costs no privacy.
"""

import collections

import tensorflow as tf
import tensorflow_federated as tff
import tensorflow_privacy as tfp
from tensorflow_federated.python.aggregators import differential_privacy

from tff_experiments.aggregators import seeded
from tff_experiments.core import seeds
from tff_experiments.privacy import accounting
from tff_experiments.privacy import mechanisms
from tff_experiments.privacy import queries


def _query(config) -> tfp.SumAggregationDPQuery:
  """The sum query of the config: the mechanism's, or Andrew et al.'s adaptive clipping."""
  dp, cohort = config.privacy, config.schedule.clients_per_round
  seed = seeds.derive(config.run.seed, purpose='dp_noise')
  if not dp.adaptive_clip:
    return mechanisms.MECHANISMS.get(dp.mechanism).query(
        clip=dp.clip_norm, noise_multiplier=dp.noise_multiplier, seed=seed)
  count_stddev = dp.clipped_count_stddev
  if count_stddev is None:
    count_stddev = accounting.default_clipped_count_stddev(dp.noise_multiplier, cohort)
  value_noise, count_stddev = differential_privacy.adaptive_clip_noise_params(
      dp.noise_multiplier, float(cohort), count_stddev)
  return queries.SeededQuantileAdaptiveClipSumQuery(
      initial_l2_norm_clip=dp.clip_norm, noise_multiplier=value_noise,
      target_unclipped_quantile=dp.target_unclipped_quantile,
      learning_rate=dp.clip_learning_rate, clipped_count_stddev=count_stddev,
      expected_num_records=float(cohort), seed=seed,
      count_seed=seeds.derive(config.run.seed, purpose='dp_count_noise'))


def central(inner: tff.aggregators.UnweightedAggregationFactory, config
            ) -> tff.aggregators.UnweightedAggregationFactory:
  """Clip, sum with `inner`, noise, divide by --clients_per_round (see module doc)."""
  query = tfp.NormalizedQuery(_query(config),
                              denominator=float(config.schedule.clients_per_round))
  return tff.aggregators.DifferentiallyPrivateFactory(query, record_aggregation_factory=inner)


class LocalDpFactory(seeded.SeededUpdateLayer):
  """Each client clips its update and adds the mechanism's noise (seeded by its update seed)
  before the inner aggregation. Reports `clipped_fraction`, a simulation diagnostic outside
  the guarantee."""
  purpose = 'dp_local_noise'

  def __init__(self, inner: tff.aggregators.WeightedAggregationFactory, *, mechanism: str,
               clip: float, noise_multiplier: float):
    super().__init__(inner)
    self._mechanism = mechanisms.MECHANISMS.get(mechanism)
    self._clip, self._scale = clip, noise_multiplier * clip

  def transform(self, value_type):
    del value_type
    mechanism, clip, scale = self._mechanism, self._clip, self._scale

    def privatize(value, seed):
      clipped, norm = mechanism.clip(value, clip)
      noise = mechanism.noise(clipped, scale=scale, seed=seed)
      return (tf.nest.map_structure(tf.add, clipped, noise),
              tf.cast(norm > clip, tf.float32))

    return privatize

  def report(self, value, weight, output, extra):
    del value, weight
    return tff.federated_zip(collections.OrderedDict(
        local_dp=output.measurements, clipped_fraction=tff.federated_mean(extra)))


def local(inner: tff.aggregators.WeightedAggregationFactory, config
          ) -> tff.aggregators.WeightedAggregationFactory:
  """The local DP layer of the config."""
  dp = config.privacy
  return LocalDpFactory(inner, mechanism=dp.mechanism, clip=dp.clip_norm,
                        noise_multiplier=dp.noise_multiplier)
