"""Server optimizers by `--server_optimizer`: the server section -> a `tff.learning.optimizers`.

Each entry says which `--server_*` hyperparameters it reads, so only those are active (in
hparams.json and the run's identity). Defaults of the adaptive ones follow Reddi et al. 2021,
"Adaptive Federated Optimization": beta_1 0.9, beta_2 0.99, and epsilon (their adaptivity
tau, tuned per task there) 1e-3.
"""

import dataclasses
from typing import Any, Callable

import tensorflow_federated as tff

from tff_experiments.core import registry


@dataclasses.dataclass(frozen=True)
class ServerOptimizer:
  """How to build one optimizer from the server section, and which fields it reads."""
  build: Callable[[Any], tff.learning.optimizers.Optimizer]
  uses: tuple[str, ...] = ()


SERVER_OPTIMIZERS: registry.Registry[ServerOptimizer] = registry.Registry(
    'server optimizer', flag='server_optimizer', entries={
        'sgd': ServerOptimizer(
            lambda s: tff.learning.optimizers.build_sgdm(learning_rate=s.learning_rate)),
        'sgdm': ServerOptimizer(
            lambda s: tff.learning.optimizers.build_sgdm(learning_rate=s.learning_rate,
                                                         momentum=s.momentum),
            uses=('momentum',)),
        'adam': ServerOptimizer(
            lambda s: tff.learning.optimizers.build_adam(
                learning_rate=s.learning_rate, beta_1=s.beta_1, beta_2=s.beta_2,
                epsilon=s.epsilon),
            uses=('beta_1', 'beta_2', 'epsilon')),
        'yogi': ServerOptimizer(
            lambda s: tff.learning.optimizers.build_yogi(
                learning_rate=s.learning_rate, beta_1=s.beta_1, beta_2=s.beta_2,
                epsilon=s.epsilon),
            uses=('beta_1', 'beta_2', 'epsilon')),
        'adagrad': ServerOptimizer(
            lambda s: tff.learning.optimizers.build_adagrad(learning_rate=s.learning_rate,
                                                            epsilon=s.epsilon),
            uses=('epsilon',)),
    })


def uses(optimizer: str, field: str) -> bool:
  """Whether `--server_optimizer=optimizer` reads `--server_<field>`."""
  return optimizer in SERVER_OPTIMIZERS and field in SERVER_OPTIMIZERS.get(optimizer).uses


def build(server_section: Any) -> tff.learning.optimizers.Optimizer:
  """The server optimizer of `sections.ServerSettings` (`--server_*` flags)."""
  return SERVER_OPTIMIZERS.get(server_section.optimizer).build(server_section)
