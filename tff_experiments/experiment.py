"""Assembles one experiment from its config: data, model, process, planner, evaluator; runs it."""

import functools
from typing import Callable, ContextManager, Optional, TextIO

from datasets import base as datasets_base
from tff_experiments import settings
from tff_experiments.aggregators import stack
from tff_experiments.algorithms import registry as algorithms
from tff_experiments.clients import client_data
from tff_experiments.clients import federated_data
from tff_experiments.clients import lr_schedules
from tff_experiments.evaluation import centralized
from tff_experiments.evaluation import personalization
from tff_experiments.models import model as model_lib
from tff_experiments.privacy import ledger
from tff_experiments.results import run_dir
from tff_experiments.runner import hooks
from tff_experiments.runner import loop
from tff_experiments.runner import round_plan
from tff_experiments.secagg import rounds as secure_rounds


def load_data(config: settings.ExperimentConfig) -> datasets_base.FederatedData:
  """The federated dataset named by the config (raises datasets.base.DataError)."""
  return federated_data.load(config.data)


def build_model(config: settings.ExperimentConfig,
                data: datasets_base.FederatedData) -> model_lib.Model:
  """The configured model with initial weights from `--seed`."""
  return model_lib.build(config.model.model, input_shape=data.test_x.shape[1:],
                         num_classes=data.num_classes, seed=config.run.seed,
                         hidden_units=config.model.mlp_hidden_units)


def build_process(config: settings.ExperimentConfig, data: datasets_base.FederatedData,
                  model: model_lib.Model):
  """The learning process over `client_data` tasks (training on the clients' training parts
  when personalization holds some of their data out), with `--secure_aggregation`'s protocol
  around each round."""
  inputs = client_data.task_inputs(
      data.train, epochs=config.client.epochs_per_round, batch_size=config.client.batch_size,
      holdout_fraction=personalization.holdout_fraction(config))
  return secure_rounds.build(
      config, lambda: algorithms.build(config, model=model, aggregator=stack.build(config),
                                       inputs=inputs),
      client_data.task_sequence)


def build_planner(config: settings.ExperimentConfig,
                  data: datasets_base.FederatedData) -> round_plan.RoundPlanner:
  """Round plans from the schedule's sampler, the client step cap, the enabled adjustments
  (e.g. `--client_dropout_rate`), the client learning-rate schedule, `--seed` and (for the
  clients' held-out parts) `--split_seed`."""
  return round_plan.RoundPlanner(
      data.train.client_ids, seed=config.run.seed,
      clients_per_round=config.schedule.clients_per_round,
      sampler=config.schedule.client_sampling, max_steps=config.client.max_steps,
      adjustments=round_plan.adjustments(config),
      learning_rate=functools.partial(lr_schedules.learning_rate, config.client),
      split_seed=config.data.split_seed)


def build_evaluator(config: settings.ExperimentConfig, data: datasets_base.FederatedData,
                    model: model_lib.Model) -> loop.Evaluator:
  """Test-set metrics (`eval/...`), plus `personalization/...` when it is on."""
  # Personalization's computation first: Keras models traced into a TFF graph invalidate the
  # eager ones made before them (the centralized evaluator's).
  personalize = personalization.build_evaluator(config, model, data)
  evaluate = centralized.build_evaluator(model, test_x=data.test_x, test_y=data.test_y)
  if personalize is None:
    return evaluate
  return lambda weights: {**evaluate(weights), **personalize(weights)}


def complete(config: settings.ExperimentConfig,
             data: datasets_base.FederatedData) -> settings.ExperimentConfig:
  """The config with the settings that need the data filled in (DP's delta for natural
  datasets, a noise multiplier calibrated to --dp_target_epsilon); recorded in hparams.json."""
  return ledger.complete(config, population=len(data.train.client_ids),
                         planner=lambda: build_planner(config, data))


def run(config: settings.ExperimentConfig, data: datasets_base.FederatedData,
        paths: run_dir.RunPaths, *, guard: Optional[Callable[[float], ContextManager]] = None,
        out: Optional[TextIO] = None) -> dict:
  """Builds and runs the experiment in the current TFF context; returns its summary.

  `guard(seconds)` bounds each round (the local worker's watchdog deadline).
  """
  config = complete(config, data)
  model = build_model(config, data)
  schedule = loop.Schedule(
      total_rounds=config.schedule.total_rounds, rounds_per_eval=config.schedule.rounds_per_eval,
      rounds_per_checkpoint=config.schedule.rounds_per_checkpoint,
      target_accuracy=config.schedule.target_accuracy,
      worker_timeout_s=config.run.worker_timeout_s)
  return loop.run(schedule, process=build_process(config, data, model),
                  planner=build_planner(config, data),
                  evaluate=build_evaluator(config, data, model),
                  paths=paths, hooks=hooks.build(config, paths, data), guard=guard, out=out)
