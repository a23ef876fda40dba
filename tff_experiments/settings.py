"""Every setting of an experiment: the sections composed, checks across them, run names.

The settings themselves are fields of the sections in `sections.py` and beside the code they
configure (`clients/data_settings.py`, `privacy/`, `secagg/`; one field = one flag);
`launch.run_experiment` binds them to absl flags generically, `hparams.json` records the active
ones, and components read their section (`config.client.learning_rate` is
`--client_learning_rate`).
"""

import dataclasses
from typing import Any, Collection, Mapping, Optional

from tff_experiments import sections
from tff_experiments.clients import data_settings
from tff_experiments.clients import federated_data
from tff_experiments.core import applicability
from tff_experiments.core import config
from tff_experiments.models import architectures
from tff_experiments.privacy import privacy_settings
from tff_experiments.secagg import secagg_settings

@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
  """Every setting of a run, fully resolved and validated (hparams.json is its active part)."""
  run: sections.RunSettings
  data: data_settings.DataSettings
  model: sections.ModelSettings
  algorithm: sections.AlgorithmSettings
  client: sections.ClientSettings
  server: sections.ServerSettings
  aggregation: sections.AggregationSettings
  schedule: sections.ScheduleSettings
  personalization: sections.PersonalizationSettings
  privacy: privacy_settings.PrivacySettings
  secure_aggregation: secagg_settings.SecAggSettings


def _inputs(flat) -> str:
  """The dataset's inputs in words ('8x8 images', '60 features'), for messages."""
  return architectures.describe(federated_data.DATASETS.get(flat['dataset']).input_shape)


CROSS_CHECKS = (
    config.CrossCheck(
        ('model', 'dataset'),
        lambda f: (f['model'] is None or f['dataset'] not in federated_data.DATASETS
                   or architectures.fits(f['model'],
                                         federated_data.DATASETS.get(f['dataset']).input_shape)),
        lambda f: (f'--model={f["model"]!r} does not fit the {_inputs(f)} of '
                   f'--dataset={f["dataset"]!r}')),
    config.CrossCheck(
        ('dataset', 'partition'),
        lambda f: (f['partition'] is None or f['dataset'] not in federated_data.DATASETS
                   or f['partition'] in federated_data.partition_choices(f['dataset'])),
        lambda f: (f'--partition={f["partition"]!r} does not fit --dataset={f["dataset"]!r}; '
                   f'choose one of {federated_data.partition_choices(f["dataset"])}')),
    config.CrossCheck(
        ('clients_per_round', 'num_clients', 'dataset'),
        lambda f: (f['dataset'] not in federated_data.DATASETS or data_settings.fixed_population(f)
                   or f['clients_per_round'] <= f['num_clients']),
        '--clients_per_round must be <= --num_clients'),
    config.CrossCheck(
        ('labels_per_client', 'partition', 'dataset'),
        lambda f: (f['partition'] != 'label_quantity'
                   or f['dataset'] not in federated_data.DATASETS
                   or f['labels_per_client'] <= federated_data.DATASETS.get(
                       f['dataset']).num_classes),
        lambda f: (f'--labels_per_client={f["labels_per_client"]} exceeds the '
                   f'{federated_data.DATASETS.get(f["dataset"]).num_classes} classes of '
                   f'--dataset={f["dataset"]!r}')),
    config.CrossCheck(
        ('stop_at_target', 'target_accuracy'),
        lambda f: not f['stop_at_target'] or f['target_accuracy'] is not None,
        '--stop_at_target requires --target_accuracy'),
) + privacy_settings.CROSS_CHECKS + secagg_settings.CROSS_CHECKS


# Settings that head the default run name, in this order.
_NAME_FLAGS = ('dataset', 'algorithm', 'model', 'partition')
_MAX_NAME_LENGTH = 180


def default_run_name(experiment: ExperimentConfig) -> str:
  """Readable and stable: dataset-algorithm-model-partition, then the settings that differ from
  what those four alone would give (a value its resolver derives from the others is no
  difference), then a hash of every active setting (no timestamp, so the
  same command finds its own run again)."""
  values = config.flat(experiment)
  baseline = config.flat(from_flat({'experiment_name': 'baseline',
                                   **{f: values[f] for f in _NAME_FLAGS}}, given=()))
  head = [config.name_text(values[f]) for f in _NAME_FLAGS]
  resolved = {f.flag: f.setting.resolve(values) for f in fields()
              if f.default is None and f.setting.resolve is not None}
  changed = [f'{f}={config.name_text(v)}' for f, v in config.identity(experiment).items()
             if f not in _NAME_FLAGS and config.normalized(v) != config.normalized(baseline[f])
             and not (f in resolved and config.normalized(v) == config.normalized(resolved[f]))]
  tail = config.short_hash(experiment)
  name = '-'.join(head + changed)
  return f'{name[:_MAX_NAME_LENGTH - len(tail) - 1]}-{tail}'


def from_flat(values: Mapping[str, Any],
              given: Optional[Collection[str]] = None) -> ExperimentConfig:
  """The resolved, validated config of flag-name -> value (missing: defaults); ConfigError.

  A setting in `given` that the run makes inactive is refused (ConfigError naming it and what
  would make it apply), as the command line refuses a flag given explicitly. `given` defaults
  to every key of `values`: a caller who passes `proximal_mu` asked for it as surely as one who
  types --proximal_mu, and silently running FedAvg instead is the worst outcome. A caller that
  fills in values nobody asked for (its own defaults plus overrides) names the overrides;
  `given=()` refuses nothing (e.g. every setting's value, as `config.flat` gives them).
  Without --experiment_name the run is named by `default_run_name`.
  """
  given = values.keys() if given is None else given
  experiment = config.resolve(ExperimentConfig, CROSS_CHECKS, values, given=given)
  if experiment.run.experiment_name is None:
    experiment = dataclasses.replace(experiment, run=dataclasses.replace(
        experiment.run, experiment_name=default_run_name(experiment)))
  return experiment


def unapplied(values: Mapping[str, Any],
              given: Collection[str]) -> list[applicability.Reason]:
  """`config.unapplied` of the experiment: why each given setting the run makes inactive does
  not apply (`applicability.Reason`s; [] if all apply). `values` must be valid."""
  return config.unapplied(ExperimentConfig, values, given)


def fields() -> list[config.Field]:
  """Every setting (one per flag)."""
  return config.fields(ExperimentConfig)
