"""The one validated, frozen description of an experiment (hparams.json is its dump)."""

import dataclasses
from typing import Any, Optional


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
  """Every setting of a run, fully resolved (no 'default' placeholders left)."""
  experiment_name: str
  root_output_dir: str
  # Data.
  dataset: str
  data_dir: Optional[str]
  cache_dir: str
  only_digits: bool
  partition: str
  num_clients: int
  dirichlet_alpha: float
  # Model and algorithm.
  model: str
  algorithm: str
  aggregator: str
  # Clients.
  clients_per_round: int
  client_epochs_per_round: int
  client_batch_size: int
  client_learning_rate: float
  # Server.
  server_optimizer: str
  server_learning_rate: float
  server_momentum: float
  # Schedule.
  total_rounds: int
  rounds_per_eval: int
  rounds_per_checkpoint: int
  target_accuracy: Optional[float]
  seed: int

  def to_json_dict(self) -> dict[str, Any]:
    """The config as a JSON-serializable dict, in field order."""
    return dataclasses.asdict(self)


# Fields that name where a run lives rather than what it computes: a resumed run may differ here.
LOCATION_FIELDS = ('experiment_name', 'root_output_dir', 'data_dir', 'cache_dir')


def differing_fields(config: ExperimentConfig, saved: dict[str, Any]) -> list[str]:
  """Names of the fields (other than LOCATION_FIELDS) whose value differs from `saved`."""
  current = config.to_json_dict()
  return [k for k in current
          if k not in LOCATION_FIELDS and saved.get(k, object()) != current[k]]
