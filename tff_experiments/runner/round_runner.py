"""The one interface through which the loop runs rounds, and its adapter for plain processes.

The loop hands a `RoundRunner` the whole `RoundPlan` of a round: a plain learning process
needs only the reporting clients' tasks (`PlainRounds`), while a round run inside a protocol
needs the round number and the cohort too (secure aggregation's key agreement and drop-outs:
`secagg.rounds.SecureRounds`). The assembly (`experiment.build_rounds`) picks the runner; the
loop never asks which one it has.
"""

import dataclasses
from typing import Any, Protocol

import tensorflow_federated as tff

from tff_experiments.runner import round_plan


class RoundRunner(Protocol):
  """What the loop needs of the rounds it runs."""

  def initialize(self) -> Any:
    """The state before round 1."""

  def run(self, state: Any, plan: round_plan.RoundPlan
          ) -> tff.learning.templates.LearningProcessOutput:
    """One round of `plan` from `state`: the new state and the round's measurements."""

  def get_model_weights(self, state: Any) -> tff.learning.models.ModelWeights:
    """The global model of `state` (a TFF computation: it runs where the rounds run)."""


@dataclasses.dataclass(frozen=True)
class PlainRounds:
  """A `RoundRunner` of a learning process over ClientTasks: each round is `process.next` on
  the plan's reporting clients' tasks."""
  process: tff.learning.templates.LearningProcess

  def initialize(self) -> Any:
    return self.process.initialize()

  def run(self, state: Any, plan: round_plan.RoundPlan
          ) -> tff.learning.templates.LearningProcessOutput:
    return self.process.next(state, plan.tasks())

  def get_model_weights(self, state: Any) -> tff.learning.models.ModelWeights:
    return self.process.get_model_weights(state)
