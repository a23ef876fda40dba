"""Assembles one experiment from its config: data, model, process, planner, evaluator; runs it."""

import contextlib
import functools
from typing import Callable, ContextManager, Iterator, Optional, TextIO

from datasets import base as datasets_base
from datasets import whole_client_data
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


def schedule(config: settings.ExperimentConfig) -> loop.Schedule:
  """When the run's rounds end, evaluate and checkpoint."""
  return loop.Schedule(
      total_rounds=config.schedule.total_rounds, rounds_per_eval=config.schedule.rounds_per_eval,
      rounds_per_checkpoint=config.schedule.rounds_per_checkpoint,
      target_accuracy=config.schedule.target_accuracy,
      worker_timeout_s=config.run.worker_timeout_s)


def write_summary(config: settings.ExperimentConfig, paths: run_dir.RunPaths, *,
                  error: BaseException) -> None:
  """summary.json of a run that `error` ended before its round loop began (which writes it
  otherwise): `interrupted` or `failed`, with the rows metrics.csv holds."""
  status, message = loop.ended_by(error)
  loop.write_summary(schedule(config), paths, status=status, message=message, extra={})


def run(config: settings.ExperimentConfig, data: datasets_base.FederatedData,
        paths: run_dir.RunPaths, *, guard: Optional[Callable[[float], ContextManager]] = None,
        out: Optional[TextIO] = None) -> dict:
  """Builds and runs the experiment in the current TFF context; returns its summary.

  `guard(seconds)` bounds each round (the local worker's watchdog deadline).
  """
  config = complete(config, data)
  model = build_model(config, data)
  process = build_process(config, data, model)
  evaluate = build_evaluator(config, data, model)  # After the process: see build_evaluator.
  guard = guard or (lambda seconds: contextlib.nullcontext())

  @contextlib.contextmanager
  def guarded_round(seconds: float) -> Iterator[None]:
    with _storage_explained(data), guard(seconds):
      yield

  def guarded_evaluate(weights):
    with _storage_explained(data):
      return evaluate(weights)

  return loop.run(schedule(config), process=process,
                  planner=build_planner(config, data), evaluate=guarded_evaluate,
                  paths=paths, hooks=hooks.build(config, paths, data), guard=guarded_round,
                  out=out)


@contextlib.contextmanager
def _storage_explained(data: datasets_base.FederatedData) -> Iterator[None]:
  """Turns an error of a computation reading the clients into one line (DataError) when their
  storage is at fault (e.g. client files deleted mid-run): else a raw gRPC dump of the worker's
  read error."""
  try:
    yield
  except Exception as e:  # pylint: disable=broad-except  # Re-raised unless explained.
    failure = (data.train.read_failure(e)
               if isinstance(data.train, whole_client_data.WholeClientData) else None)
    if failure:
      raise datasets_base.DataError(failure) from e
    raise
