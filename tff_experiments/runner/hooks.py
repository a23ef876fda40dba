"""Per-round extension points of the loop: extra CSV columns, and reasons to stop a run.

A hook sees each round's plan and metrics row, adds columns (a privacy ledger's epsilon, say)
and may end the run with a status (`diverged`, `budget_exhausted`, ...). On resume the loop
replays the plans of the rounds already done, so stateful hooks continue exactly. `HOOKS`
registers each hook as `name -> fn(config, paths, data) -> hook or None` (None: not enabled by
the settings; `data` the run's `datasets.base.FederatedData`, None in tests that have none);
`build` makes a run's hooks in registration order. A hook's `summary()` joins summary.json.
"""

import dataclasses
import math
from typing import Any, Callable, Mapping, Optional

from tff_experiments.core import registry
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


def _tensorboard(config, paths, data) -> Optional[RoundHook]:
  """--tensorboard's hook (imported here: it needs TF and builds on this module)."""
  del data
  from tff_experiments.results import tensorboard  # pylint: disable=g-import-not-at-top
  return tensorboard.hook(config, paths)


def _privacy_ledger(config, paths, data) -> Optional[RoundHook]:
  """The DP ledger (`privacy/epsilon`), over the run's training clients."""
  del paths
  from tff_experiments.privacy import ledger  # pylint: disable=g-import-not-at-top
  population = (len(data.train.client_ids) if data is not None
                else config.data.num_clients)
  return ledger.build(config, population)


# name -> fn(config: settings.ExperimentConfig, paths: run_dir.RunPaths,
#            data: datasets.base.FederatedData | None) -> RoundHook | None
HOOKS: registry.Registry[Callable[[Any, Any, Any], Optional[RoundHook]]] = registry.Registry(
    'round hook', flag='(none)', entries={
        'plan_columns': lambda config, paths, data: PlanColumns(),
        'divergence': lambda config, paths, data: Divergence(),
        'privacy_ledger': _privacy_ledger,
        'stop_at_target': lambda config, paths, data: (
            StopAtTarget(config.schedule.target_accuracy)
            if config.schedule.stop_at_target else None),
        # Last, so that it sees every other hook's columns.
        'tensorboard': _tensorboard,
    })


def default_hooks() -> list[RoundHook]:
  """Hooks every run has, whatever its settings."""
  return [PlanColumns(), Divergence()]


def build(config, paths, data=None) -> list[RoundHook]:
  """The hooks the run's settings enable, in registration order."""
  return [hook for _, make in HOOKS.items()
          if (hook := make(config, paths, data)) is not None]
