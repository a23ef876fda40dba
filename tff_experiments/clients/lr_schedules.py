"""Client learning-rate schedules over rounds (`--client_lr_schedule`): round r -> the lr of r.

The round planner asks the schedule for each round's rate and sends it in the clients' tasks
(`client_data`), so one compiled computation serves every round and the rate is recorded
(`plan/client_learning_rate`). Rounds count from 1; every schedule gives `--client_learning_rate`
in round 1.
"""

import math
from typing import Any, Callable

from tff_experiments.core import registry

# schedule(base learning rate, round number >= 1, client settings) -> that round's rate; the
# settings (`sections.ClientSettings`) carry a schedule's own parameters (`lr_decay`).
Schedule = Callable[[float, int, Any], float]

LR_SCHEDULES: registry.Registry[Schedule] = registry.Registry(
    'client learning-rate schedule', flag='client_lr_schedule', entries={
        'constant': lambda lr, round_num, client: lr,
        'exp_decay': lambda lr, round_num, client: lr * client.lr_decay ** (round_num - 1),
        'inv_sqrt_decay': lambda lr, round_num, client: lr / math.sqrt(round_num),
    })


def learning_rate(client: Any, round_num: int) -> float:
  """The client learning rate of `round_num` under the client settings' schedule."""
  return float(LR_SCHEDULES.get(client.lr_schedule)(client.learning_rate, round_num, client))
