"""Algorithm registry: `--algorithm` name -> builder of a TFF `LearningProcess`.

Each builder composes distributor, client work, aggregator and finalizer with
`tff.learning.templates.compose_learning_process`; the runner never branches on the name.
The processes take client datasets; `client_data.build_dataset_computation` turns them into
processes that take client keys.
"""

from typing import Callable

import numpy as np
import tensorflow as tf
import tensorflow_federated as tff

from tff_experiments import client_work
from tff_experiments import config as config_lib
from tff_experiments import models
from tff_experiments import optimizers

Builder = Callable[..., tff.learning.templates.LearningProcess]


def initial_weights_computation(model: models.Model) -> tff.Computation:
  """A computation returning the model's (seeded) initial `ModelWeights`."""

  @tff.tensorflow.computation
  def initial_weights():
    trainable, non_trainable = model.initial_weights
    return tff.learning.models.ModelWeights(
        tuple(tf.convert_to_tensor(w) for w in trainable),
        tuple(tf.convert_to_tensor(w) for w in non_trainable))

  return initial_weights


def build_fedavg(*, model: models.Model,
                 config: config_lib.ExperimentConfig,
                 aggregator: tff.aggregators.WeightedAggregationFactory
                 ) -> tff.learning.templates.LearningProcess:
  """FedAvg (McMahan et al. 2017): local SGD, weighted mean of deltas, server optimizer."""
  weights_type = model.weights_type()
  work = client_work.build_client_work(model, learning_rate=config.client_learning_rate)
  server_optimizer = optimizers.build_server_optimizer(
      config.server_optimizer, learning_rate=config.server_learning_rate,
      momentum=config.server_momentum)
  return tff.learning.templates.compose_learning_process(
      initial_weights_computation(model),
      tff.learning.templates.build_broadcast_process(weights_type),
      work,
      aggregator.create(weights_type.trainable, tff.TensorType(np.float32)),
      tff.learning.templates.build_apply_optimizer_finalizer(server_optimizer, weights_type),
  )


ALGORITHMS: dict[str, Builder] = {
    'fedavg': build_fedavg,
}


def build(config: config_lib.ExperimentConfig, *, model: models.Model,
          aggregator: tff.aggregators.WeightedAggregationFactory
          ) -> tff.learning.templates.LearningProcess:
  """The learning process named by `config.algorithm`."""
  if config.algorithm not in ALGORITHMS:
    raise ValueError(
        f'--algorithm={config.algorithm!r} is unknown; choose one of {sorted(ALGORITHMS)}')
  return ALGORITHMS[config.algorithm](model=model, config=config, aggregator=aggregator)
