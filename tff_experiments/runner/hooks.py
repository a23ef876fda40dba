"""Per-round extension points of the loop: extra CSV columns, and reasons to stop a run.

A hook sees each round's plan and metrics row, adds columns (a privacy ledger's epsilon, say)
and may end the run with a status (`diverged`, `budget_exhausted`, ...). On resume the loop
replays the plans of the rounds already done, so stateful hooks continue exactly. A hook's
`summary()` joins summary.json.

This module is the interface (`RoundHook`, `Stop`) and the hooks every run has; it imports
nothing but the round plan, so a hook can live beside what it measures (`privacy.ledger`,
`runner.tensorboard`) without the loop knowing it. Which hooks a run has, and in what order,
the assembly decides from the settings (`experiment.HOOKS`).
"""

import dataclasses
import math
from typing import Any, Mapping, Optional

from tff_experiments.runner import round_plan


@dataclasses.dataclass(frozen=True)
class Stop:
  """Ends the run after (or instead of) a round, with `status` in summary.json."""
  status: str
  message: str


class RoundHook:
  """Base hook: does nothing. Override what you need."""

  def replay(self, plan: round_plan.RoundPlan) -> None:
    """A round done before a resume (rebuild state from it)."""

  def before_round(self, plan: round_plan.RoundPlan) -> Optional[Stop]:
    """A reason not to run this round (the run ends before it), or None."""
    del plan
    return None

  def after_round(self, plan: round_plan.RoundPlan, row: Mapping[str, Any]) -> dict[str, Any]:
    """Extra columns for this round's row."""
    del plan, row
    return {}

  def stop_after(self, plan: round_plan.RoundPlan, row: Mapping[str, Any]) -> Optional[Stop]:
    """A reason to end the run after this round (its row is kept), or None."""
    del plan, row
    return None

  def summary(self) -> dict[str, Any]:
    """Fields for summary.json (e.g. the final epsilon), as of the last round seen."""
    return {}


class PlanColumns(RoundHook):
  """Records how many clients were sampled, reported and dropped."""

  def after_round(self, plan, row):
    return plan.metrics()


class Divergence(RoundHook):
  """Stops with `diverged` when every reporting client's update was non-finite, or the test
  loss is (a non-finite model, whose accuracy the evaluation does not report)."""

  def stop_after(self, plan, row):
    reporting = row.get('train/num_clients')
    nonfinite = row.get('train/nonfinite_clients')
    if reporting and nonfinite == reporting:
      return Stop('diverged', f'round {plan.round_num}: every client update was non-finite '
                  '(NaN/inf); the model diverged. Lower --client_learning_rate or '
                  '--server_learning_rate.')
    eval_loss = row.get('eval/loss')
    if isinstance(eval_loss, float) and not math.isfinite(eval_loss):
      return Stop('diverged', f'round {plan.round_num}: the test loss is {eval_loss} (the '
                  'model is not finite); the model diverged. Lower --client_learning_rate or '
                  '--server_learning_rate.')
    return None


class StopAtTarget(RoundHook):
  """--stop_at_target: ends the run with `target_reached` once the test accuracy reaches
  --target_accuracy (rounds without evaluation never stop it)."""

  def __init__(self, target_accuracy: float):
    self.target_accuracy = target_accuracy

  def stop_after(self, plan, row):
    accuracy = row.get('eval/accuracy')
    if (isinstance(accuracy, (int, float)) and not math.isnan(accuracy)
        and accuracy >= self.target_accuracy):
      return Stop('target_reached', f'round {plan.round_num}: test accuracy {accuracy:.4f} '
                  f'reached --target_accuracy={self.target_accuracy:g} (--stop_at_target)')
    return None


def default_hooks() -> list[RoundHook]:
  """Hooks every run has, whatever its settings."""
  return [PlanColumns(), Divergence()]
