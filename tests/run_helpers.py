"""Running small experiments in tests: a run into a run directory, and a simulated crash."""

import io

import pandas as pd

from tff_experiments import experiment
from tff_experiments.results import run_dir

TIME_COLUMNS = ['round_time_s', 'eval_time_s']


class CrashAfter(io.StringIO):
  """A progress stream that raises once round `n`'s line is printed (row and checkpoint done)."""

  def __init__(self, n: int):
    super().__init__()
    self._marker = f'round {n}/'

  def write(self, text):
    super().write(text)
    if text.startswith(self._marker):
      raise RuntimeError('simulated crash')
    return len(text)


def run(config, out=None):
  """(paths, summary) of running `config` as run_experiment does (plan, load, complete)."""
  paths, action = run_dir.plan(config, overwrite=False)
  data = experiment.load_data(config)
  config = experiment.complete(config, data)
  with run_dir.create(paths, action, config):
    return paths, experiment.run(config, data, paths, out=out or io.StringIO())


def metrics(paths) -> pd.DataFrame:
  """The run's metrics.csv without its time columns (which never repeat)."""
  return pd.read_csv(paths.metrics_csv).drop(columns=TIME_COLUMNS)
