"""Server optimizers by `--server_optimizer`: the server section -> a `tff.learning.optimizers`."""

from typing import Any, Callable

import tensorflow_federated as tff

from tff_experiments.core import registry

# name -> fn(server section) -> Optimizer. TFF's default epsilons are kept (adam/adagrad 1e-7,
# yogi 1e-3); `--server_momentum` applies to sgdm only.
SERVER_OPTIMIZERS: registry.Registry[Callable[[Any], tff.learning.optimizers.Optimizer]] = (
    registry.Registry('server optimizer', flag='server_optimizer', entries={
        'sgd': lambda s: tff.learning.optimizers.build_sgdm(learning_rate=s.learning_rate),
        'sgdm': lambda s: tff.learning.optimizers.build_sgdm(learning_rate=s.learning_rate,
                                                             momentum=s.momentum),
        'adam': lambda s: tff.learning.optimizers.build_adam(learning_rate=s.learning_rate),
        'yogi': lambda s: tff.learning.optimizers.build_yogi(learning_rate=s.learning_rate),
        'adagrad': lambda s: tff.learning.optimizers.build_adagrad(learning_rate=s.learning_rate),
    }))


def build(server_section: Any) -> tff.learning.optimizers.Optimizer:
  """The server optimizer of `settings.ServerSettings` (`--server_*` flags)."""
  return SERVER_OPTIMIZERS.get(server_section.optimizer)(server_section)
