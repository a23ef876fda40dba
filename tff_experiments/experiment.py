"""Assembles one experiment from its config: data, model, process, evaluator; then runs it."""

from typing import Optional, TextIO

import tensorflow_federated as tff

from datasets import registry as datasets_registry
from tff_experiments import aggregators
from tff_experiments import algorithms
from tff_experiments import client_data
from tff_experiments import config as config_lib
from tff_experiments import evaluation
from tff_experiments import models
from tff_experiments import results
from tff_experiments import runner


def load_data(config: config_lib.ExperimentConfig):
  """The federated dataset named by the config (raises datasets.base.DataError)."""
  return datasets_registry.load(
      config.dataset, data_dir=config.data_dir, cache_dir=config.cache_dir,
      partition=config.partition, num_clients=config.num_clients,
      dirichlet_alpha=config.dirichlet_alpha, seed=config.seed, only_digits=config.only_digits)


def build_process(config: config_lib.ExperimentConfig,
                  data) -> tff.learning.templates.LearningProcess:
  """The learning process over client keys."""
  model = models.build(config.model, input_shape=data.test_x.shape[1:],
                       num_classes=data.num_classes, seed=config.seed)
  process = algorithms.build(config, model=model,
                             aggregator=aggregators.build(config))
  dataset_computation = client_data.build_dataset_computation(
      data.train, epochs=config.client_epochs_per_round, batch_size=config.client_batch_size)
  process = tff.simulation.compose_dataset_computation_with_learning_process(
      dataset_computation, process)
  return process


def run(config: config_lib.ExperimentConfig, data, paths: results.RunPaths, *,
        out: Optional[TextIO] = None) -> dict:
  """Builds and runs the experiment in the current TFF context; returns its summary."""
  process = build_process(config, data)
  evaluate = evaluation.build_evaluator(config.model, test_x=data.test_x, test_y=data.test_y,
                                        num_classes=data.num_classes)
  return runner.run(config, process=process, client_ids=data.train.client_ids,
                    evaluate=evaluate, paths=paths, out=out)
