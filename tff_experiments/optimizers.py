"""Server optimizer registry: `--server_optimizer` name -> a `tff.learning.optimizers` builder."""

from typing import Callable

import tensorflow_federated as tff

# name -> fn(learning_rate, momentum) -> tff.learning.optimizers.Optimizer. TFF's default
# epsilons are kept (adam/adagrad 1e-7, yogi 1e-3).
SERVER_OPTIMIZERS: dict[str, Callable[[float, float], tff.learning.optimizers.Optimizer]] = {
    'sgd': lambda lr, momentum: tff.learning.optimizers.build_sgdm(learning_rate=lr),
    'sgdm': lambda lr, momentum: tff.learning.optimizers.build_sgdm(
        learning_rate=lr, momentum=momentum),
    'adam': lambda lr, momentum: tff.learning.optimizers.build_adam(learning_rate=lr),
    'yogi': lambda lr, momentum: tff.learning.optimizers.build_yogi(learning_rate=lr),
    'adagrad': lambda lr, momentum: tff.learning.optimizers.build_adagrad(learning_rate=lr),
}


def build_server_optimizer(name: str, *, learning_rate: float,
                           momentum: float = 0.9) -> tff.learning.optimizers.Optimizer:
  """The server optimizer `name` (see SERVER_OPTIMIZERS); momentum applies to 'sgdm' only."""
  if name not in SERVER_OPTIMIZERS:
    raise ValueError(
        f'--server_optimizer={name!r} is unknown; choose one of {sorted(SERVER_OPTIMIZERS)}')
  return SERVER_OPTIMIZERS[name](learning_rate, momentum)
