"""Assembles one experiment from its config: data, model, round runner, planner, evaluator,
hooks; runs it.

The caller completes the config once (`complete`: the settings that need the loaded data),
before the run directory records it; `run` takes that completed config as it is.
"""

import contextlib
import dataclasses
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
from tff_experiments.core import config as config_lib
from tff_experiments.core import registry
from tff_experiments.evaluation import centralized
from tff_experiments.evaluation import personalization
from tff_experiments.models import model as model_lib
from tff_experiments.privacy import accounting
from tff_experiments.privacy import calibration
from tff_experiments.privacy import ledger
from tff_experiments.privacy import privacy_settings
from tff_experiments.results import run_dir
from tff_experiments.runner import hooks
from tff_experiments.runner import loop
from tff_experiments.runner import round_plan
from tff_experiments.runner import round_runner
from tff_experiments.runner import tensorboard
from tff_experiments.runtime import map_reduce
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


def build_rounds(config: settings.ExperimentConfig, data: datasets_base.FederatedData,
                 model: model_lib.Model) -> round_runner.RoundRunner:
  """The run's rounds over `client_data` tasks: the algorithm's learning process (training on
  the clients' training parts when personalization holds some of their data out), composed
  with the clients' task -> input computation, its round compiled to MapReduce form
  (`map_reduce`); or, with `--secure_aggregation`, inside that protocol's rounds."""
  inputs = client_data.task_inputs(
      data.train, epochs=config.client.epochs_per_round, batch_size=config.client.batch_size,
      holdout_fraction=personalization.holdout_fraction(config))
  build = lambda: algorithms.build(config, model=model, aggregator=stack.build(config),
                                   inputs=inputs)
  if config.secure_aggregation.mode in secure_rounds.SETUPS:
    return secure_rounds.SecureRounds(build, client_data.task_sequence,
                                      settings=config.secure_aggregation, seed=config.run.seed)
  return round_runner.PlainRounds(map_reduce.compiled(
      client_data.compose_with_tasks(client_data.task_sequence, build())))


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


def privacy_plan(config: settings.ExperimentConfig, population: int) -> accounting.PrivacyPlan:
  """How a DP release of the run is accounted, over `population` training clients (delta as
  the config has it: completed, for the ledger)."""
  dp = config.privacy
  return accounting.PrivacyPlan(
      mechanism=dp.mechanism, mode=dp.mode, sampling=config.schedule.client_sampling,
      population=population, clients_per_round=config.schedule.clients_per_round,
      delta=dp.delta, accountant=dp.accountant)


def complete(config: settings.ExperimentConfig,
             data: datasets_base.FederatedData) -> settings.ExperimentConfig:
  """The config with the settings that need the data filled in (DP's delta over the training
  clients, for natural datasets; a noise multiplier calibrated to --dp_target_epsilon), as
  hparams.json records them; unchanged without DP. Called once, before `run`."""
  if not privacy_settings.enabled(config_lib.flat(config)):
    return config
  population = len(data.train.client_ids)
  dp = config.privacy
  if dp.delta is None:
    dp = dataclasses.replace(dp, delta=accounting.default_delta(population))
  if dp.noise_multiplier is None:
    plan = privacy_plan(dataclasses.replace(config, privacy=dp), population)
    releases = calibration.planned_releases(plan, config.schedule.total_rounds,
                                            lambda: build_planner(config, data))
    dp = dataclasses.replace(dp, noise_multiplier=calibration.noise_multiplier(
        plan, dp.target_epsilon, releases))
  return dataclasses.replace(config, privacy=dp)


def _privacy_ledger(config: settings.ExperimentConfig, paths: run_dir.RunPaths,
                    population: int) -> Optional[ledger.PrivacyLedger]:
  """The DP ledger (`privacy/epsilon`) over the run's `population` training clients."""
  del paths
  if not privacy_settings.enabled(config_lib.flat(config)):
    return None
  dp = config.privacy
  return ledger.PrivacyLedger(ledger.LedgerParams(
      plan=privacy_plan(config, population), noise_multiplier=dp.noise_multiplier,
      budget=dp.target_epsilon if dp.stop_at_budget else None))


# The hooks the settings enable, besides those of every run (`hooks.default_hooks`), in this
# order: name -> fn(completed config, paths, training clients) -> hook or None (not enabled).
HOOKS: registry.Registry[Callable[..., Optional[hooks.RoundHook]]] = registry.Registry(
    'round hook', flag='(none)', entries={
        'privacy_ledger': _privacy_ledger,
        'stop_at_target': lambda config, paths, population: (
            hooks.StopAtTarget(config.schedule.target_accuracy)
            if config.schedule.stop_at_target else None),
        # Last, so that it sees every other hook's columns.
        'tensorboard': lambda config, paths, population: (
            tensorboard.TensorBoardHook(tensorboard.log_dir(paths.run_dir))
            if config.run.tensorboard else None),
    })


def build_hooks(config: settings.ExperimentConfig, paths: run_dir.RunPaths,
                population: int) -> list[hooks.RoundHook]:
  """The run's hooks: those of every run, then those its settings enable, in `HOOKS` order;
  `population` is the number of training clients."""
  return hooks.default_hooks() + [hook for _, make in HOOKS.items()
                                  if (hook := make(config, paths, population)) is not None]


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
  """Builds and runs the experiment of a completed config (`complete`) in the current TFF
  context; returns its summary.

  `guard(seconds)` bounds each round (the local worker's watchdog deadline).
  """
  _require_completed(config)
  model = build_model(config, data)
  rounds = build_rounds(config, data, model)
  evaluate = build_evaluator(config, data, model)  # After the rounds: see build_evaluator.
  guard = guard or (lambda seconds: contextlib.nullcontext())

  @contextlib.contextmanager
  def guarded_round(seconds: float) -> Iterator[None]:
    with _storage_explained(data), guard(seconds):
      yield

  def guarded_evaluate(weights):
    with _storage_explained(data):
      return evaluate(weights)

  return loop.run(schedule(config), rounds=rounds,
                  planner=build_planner(config, data), evaluate=guarded_evaluate, paths=paths,
                  hooks=build_hooks(config, paths, population=len(data.train.client_ids)),
                  guard=guarded_round, out=out)


def _require_completed(config: settings.ExperimentConfig) -> None:
  """ValueError if an active setting that is filled in from the data is still missing: `run`
  takes the config `complete` returned, and completes nothing itself."""
  values = config_lib.flat(config)
  missing = [f'--{f.flag}' for f in settings.fields() if f.setting.completed
             and config_lib.is_active(f, values) and values[f.flag] is None]
  if missing:
    raise ValueError(f'experiment.run takes a completed config (experiment.complete): '
                     f'{", ".join(missing)} not filled in')


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
