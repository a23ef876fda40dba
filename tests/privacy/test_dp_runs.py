"""DP-FedAvg runs end to end: noise 0 is unweighted FedAvg, the ledger resumes and stops."""

import collections
import glob
import json
import os

import pandas as pd
import pytest

import run_helpers
from tff_experiments import experiment
from tff_experiments.privacy import accounting
from tff_experiments.results import run_dir

pytestmark = pytest.mark.usefixtures('tff_worker')


def test_no_noise_and_a_huge_clip_is_exactly_unweighted_fedavg(digits_config):
  plain, _ = run_helpers.run(digits_config('plain', aggregator='unweighted_mean'))
  dp, summary = run_helpers.run(digits_config(
      'dp0', dp_mechanism='gaussian', dp_noise_multiplier=0.0, dp_clip_norm=1e9))
  columns = ['train/loss', 'train/accuracy', 'eval/loss', 'eval/accuracy']
  pd.testing.assert_frame_equal(run_helpers.metrics(plain)[columns],
                                run_helpers.metrics(dp)[columns], check_exact=True)
  assert (run_helpers.metrics(dp)['privacy/epsilon'] == float('inf')).all()
  assert summary['final_epsilon'] is None and summary['final_epsilon_unbounded'] is True
  assert summary['dp_noise_multiplier'] == 0.0
  # Every JSON file the run wrote (hparams, summary, the client cache's meta) is strict JSON.
  written = glob.glob(os.path.join(os.path.dirname(dp.run_dir), '**', '*.json'), recursive=True)
  assert {os.path.basename(p) for p in written} >= {'hparams.json', 'summary.json', 'meta.json'}
  for path in written:
    with open(path, encoding='utf-8') as f:
      json.loads(f.read(), parse_constant=_refuse_non_standard_token)


def _refuse_non_standard_token(token):
  raise ValueError(f'NaN/Infinity token {token} in strict JSON')


def test_a_resumed_dp_run_continues_noise_clip_and_ledger_exactly(digits_config):
  flags = dict(dp_mechanism='gaussian', dp_noise_multiplier=0.8, dp_adaptive_clip=True,
               dp_clip_norm=0.05, client_sampling='poisson', dp_delta=1e-3)
  full, _ = run_helpers.run(digits_config('full', **flags))
  config = digits_config('cut', **flags)
  with pytest.raises(RuntimeError, match='simulated crash'):
    run_helpers.run(config, out=run_helpers.CrashAfter(3))
  run_helpers.run(config)
  want = run_helpers.metrics(full)
  pd.testing.assert_frame_equal(want, run_helpers.metrics(run_dir.paths_of(config)),
                                check_exact=True)
  plan = accounting.PrivacyPlan('gaussian', 'central', 'poisson', 10, 3, 1e-3, 'rdp')
  assert list(want['privacy/epsilon']) == pytest.approx(
      [plan.epsilon(0.8, r) for r in range(1, 5)], rel=1e-9)
  assert want['aggregator/dp_query_metrics/clip'].nunique() == 4  # Adapting every round.


def test_local_epsilon_is_the_most_participating_clients(digits_config):
  config = digits_config('local', dp_mechanism='gaussian', dp_mode='local',
                         dp_noise_multiplier=2.0, clients_per_round=5, dp_delta=1e-3)
  paths, _ = run_helpers.run(config)
  planner = experiment.build_planner(config, experiment.load_data(config))
  plan = accounting.PrivacyPlan('gaussian', 'local', 'uniform', 10, 5, 1e-3, 'rdp')
  counts, want = collections.Counter(), []
  for r in range(1, 5):
    counts.update(planner.plan(r).reporting)
    want.append(plan.epsilon(2.0, max(counts.values())))
  assert list(run_helpers.metrics(paths)['privacy/epsilon']) == pytest.approx(want, rel=1e-9)


def test_target_epsilon_calibrates_the_noise_and_the_budget_stops_the_run(digits_config):
  paths, summary = run_helpers.run(digits_config(
      'calibrated', dp_mechanism='gaussian', dp_target_epsilon=5.0, dp_delta=1e-3))
  epsilons = run_helpers.metrics(paths)['privacy/epsilon']
  assert 0.99 * 5.0 <= epsilons.iloc[-1] <= 5.0
  assert summary['dp_noise_multiplier'] > 0 and summary['status'] == 'completed'
  paths, summary = run_helpers.run(digits_config(
      'budget', dp_mechanism='gaussian', dp_noise_multiplier=summary['dp_noise_multiplier'],
      dp_target_epsilon=epsilons.iloc[1] * 1.001, dp_stop_at_budget=True, dp_delta=1e-3))
  assert summary['status'] == 'budget_exhausted'
  assert list(run_helpers.metrics(paths)['round_num']) == [1, 2]  # Round 3 would exceed it.
