"""The plain round runner: a learning process's `next` on the reporting clients' tasks only."""

import types

from tff_experiments.runner import round_plan
from tff_experiments.runner import round_runner


class _Recording:
  """A process that records the tasks of each `next` and returns its state plus one."""

  def __init__(self):
    self.tasks = []

  def initialize(self):
    return 0

  def next(self, state, tasks):
    self.tasks.append(tasks)
    return types.SimpleNamespace(state=state + 1, metrics={})

  def get_model_weights(self, state):
    return ('weights', state)


def test_a_round_runs_the_reporting_clients_tasks_in_cohort_order():
  plan = round_plan.RoundPlan(
      round_num=4, sampled=('c', 'a', 'b'), step_caps={'c': 3, 'b': None},  # `a` dropped.
      shuffle_seeds={'a': 10, 'b': 11, 'c': 12}, update_seeds={'a': 20, 'b': 21, 'c': 22})
  process = _Recording()
  rounds = round_runner.PlainRounds(process)
  output = rounds.run(rounds.initialize(), plan)
  assert output.state == 1 and rounds.get_model_weights(output.state) == ('weights', 1)
  sent, = process.tasks
  assert [t['client_id'] for t in sent] == ['c', 'b']
  assert [int(t['shuffle_seed']) for t in sent] == [12, 11]
  assert [int(t['update_seed']) for t in sent] == [22, 21]
  assert int(sent[0]['max_steps']) == 3
