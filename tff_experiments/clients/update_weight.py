"""What each client sends beside its update: its aggregation weight and its update seed.

A client's `ClientResult.update_weight` is `OrderedDict(weight=float32, seed=int64)`. The seed
comes with the client's task (`client_data`: derived in the driver from (seed, round, client))
and is the only seed of the random draws applied to the client's update on its way to the
server (local DP noise, quantization): they are then a function of (seed, round, client,
purpose), never of the update. It travels in the weight because TFF's update layers (zeroing,
clipping) hand the weight to their inner factory unchanged, whatever its type; the aggregator
stack drops the seed above its mean (`aggregators.seeded.WeightOnlyFactory`).
"""

import collections

import numpy as np
import tensorflow_federated as tff

TYPE = tff.StructWithPythonType([('weight', np.float32), ('seed', np.int64)],
                                collections.OrderedDict)


def make(weight, seed) -> collections.OrderedDict:
  """A client's update weight: its aggregation `weight` and its update `seed`."""
  return collections.OrderedDict(weight=weight, seed=seed)


def check(weight_type: tff.types.Type, who: str) -> None:
  """TypeError naming `who` unless `weight_type` is `TYPE` (a weight with its seed)."""
  if not (isinstance(weight_type, tff.StructType) and TYPE.is_equivalent_to(weight_type)):
    raise TypeError(f"{who} takes each client's weight with its update seed ({TYPE}), got "
                    f'{weight_type}: give every client an update seed '
                    '(client_data.task or client_data.client_input)')
