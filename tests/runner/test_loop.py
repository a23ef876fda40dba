"""The round loop on tiny real data: determinism, resume-equals-uninterrupted, summary."""

import io
import math

import pandas as pd
import pytest

import run_helpers
from tff_experiments import experiment
from tff_experiments.core import files
from tff_experiments.results import run_dir
from tff_experiments.results import summary as summary_lib

pytestmark = pytest.mark.usefixtures('tff_worker')


def test_same_seed_same_metrics_other_seed_other_metrics(digits_config):
  a, _ = run_helpers.run(digits_config('a', seed=5))
  b, _ = run_helpers.run(digits_config('b', seed=5))
  c, _ = run_helpers.run(digits_config('c', seed=6))
  pd.testing.assert_frame_equal(run_helpers.metrics(a), run_helpers.metrics(b),
                                check_exact=True)
  assert not run_helpers.metrics(a)['train/loss'].equals(run_helpers.metrics(c)['train/loss'])


def test_resumed_run_ends_like_an_uninterrupted_one(digits_config):
  full, summary = run_helpers.run(digits_config('full'))
  config = digits_config('cut')
  with pytest.raises(RuntimeError, match='simulated crash'):
    # Checkpoint at 2, row 3 written, then dies.
    run_helpers.run(config, out=run_helpers.CrashAfter(3))
  cut_paths = run_dir.paths_of(config)
  assert list(pd.read_csv(cut_paths.metrics_csv)['round_num']) == [1, 2, 3]
  assert files.read_json(cut_paths.summary_json)['status'] == 'failed'
  assert run_dir.plan(config, overwrite=False)[1] == run_dir.Action.RESUME

  out = io.StringIO()
  _, resumed_summary = run_helpers.run(config, out=out)
  assert 'from the checkpoint of round 2' in out.getvalue()
  assert out.getvalue().count('round 3/4') == 1  # Redone from the checkpoint, not from 1.
  pd.testing.assert_frame_equal(run_helpers.metrics(full), run_helpers.metrics(cut_paths),
                                check_exact=True)
  assert resumed_summary['status'] == 'completed'
  for key in ('final_accuracy', 'best_accuracy', 'rounds_completed'):
    assert resumed_summary[key] == summary[key]


def test_a_run_with_a_tuple_valued_setting_resumes(digits_config):
  config = digits_config('tuple', mlp_hidden_units=(16, 8))
  with pytest.raises(RuntimeError, match='simulated crash'):
    run_helpers.run(config, out=run_helpers.CrashAfter(3))
  assert files.read_json(run_dir.paths_of(config).hparams_json)['mlp_hidden_units'] == [16, 8]
  assert run_dir.plan(config, overwrite=False)[1] == run_dir.Action.RESUME
  out = io.StringIO()
  _, summary = run_helpers.run(config, out=out)
  assert 'from the checkpoint of round 2' in out.getvalue()
  assert summary['status'] == 'completed' and summary['rounds_completed'] == 4


@pytest.mark.parametrize('flags, drawn', [
    (dict(quantization='uniform', quantization_bits=2, quantization_rotation='hadamard'),
     'comm/quantization_mse'),
    (dict(dp_mechanism='gaussian', dp_mode='local', dp_noise_multiplier=1.0, dp_delta=1e-3),
     'privacy/epsilon')])
def test_resume_with_per_client_draws_equals_an_uninterrupted_run(digits_config, flags, drawn):
  full, _ = run_helpers.run(digits_config('full', **flags))
  config = digits_config('cut', **flags)
  with pytest.raises(RuntimeError, match='simulated crash'):
    run_helpers.run(config, out=run_helpers.CrashAfter(3))
  run_helpers.run(config)
  pd.testing.assert_frame_equal(run_helpers.metrics(full),
                                run_helpers.metrics(run_dir.paths_of(config)),
                                check_exact=True)
  assert run_helpers.metrics(full)[drawn].gt(0).all()  # The layer that draws was on.


def test_dropout_and_step_spread_reach_the_csv(digits_config):
  paths, _ = run_helpers.run(digits_config('drop', client_dropout_rate=0.5, client_max_steps=5))
  frame = pd.read_csv(paths.metrics_csv)
  assert (frame['plan/clients_reporting'] + frame['plan/clients_dropped'] == 3).all()
  ok = frame['round_status'] == 'ok'
  assert (frame.loc[ok, 'train/num_clients'] == frame.loc[ok, 'plan/clients_reporting']).all()
  assert (frame.loc[ok, 'train/min_client_steps'] == 5).all()
  assert (frame.loc[ok, 'train/max_client_steps'] == 5).all()
  assert (frame['round_status'] == 'skipped').eq(frame['plan/clients_reporting'] == 0).all()


def test_partial_stragglers_run_the_seeded_share_of_their_steps(digits_config):
  config = digits_config('stragglers', straggler_fraction=1.0, straggler_policy='partial',
                         client_epochs_per_round=2)
  paths, _ = run_helpers.run(config)
  frame = pd.read_csv(paths.metrics_csv)
  data = experiment.load_data(config)
  planner = experiment.build_planner(config, data)
  for round_num, got in zip(frame['round_num'], frame['train/num_steps']):
    plan = planner.plan(int(round_num))
    sizes = {c: sum(1 for _ in data.train.create_tf_dataset_for_client(c)) for c in plan.sampled}
    want = sum(math.ceil(plan.step_fractions[c] * 2 * math.ceil(sizes[c] / 4))
               for c in plan.sampled)  # E = 2, B = 4; ceil(u * full) steps each.
    assert got == want
  assert (frame['train/max_client_steps'] <= 2 * 36).all()  # Full work: 2 x ceil(144 / 4).


def test_client_max_steps_caps_every_client(digits_config):
  paths, _ = run_helpers.run(digits_config('capped', client_max_steps=5))
  frame = pd.read_csv(paths.metrics_csv)
  assert (frame['train/num_steps'] == 3 * 5).all()
  assert (frame['num_examples'] == 3 * 5 * 4).all()  # B=4: every capped batch is full.


def test_metrics_file_has_documented_columns_and_eval_schedule(digits_config):
  paths, summary = run_helpers.run(digits_config('cols', rounds_per_eval=3, target_accuracy=0.05))
  frame = pd.read_csv(paths.metrics_csv)
  assert list(frame.columns[:9]) == ['round_num', 'train/loss', 'train/accuracy', 'eval/loss',
                                     'eval/accuracy', 'num_examples', 'round_time_s',
                                     'eval_time_s', 'train/num_steps']
  assert frame['eval/accuracy'].notna().tolist() == [False, False, True, True]  # 3 and last.
  # 10 clients of the 1,437 digits training examples: 143-144 each, 3 per round, B=4.
  assert frame['num_examples'].between(3 * 143, 3 * 144).all()
  assert (frame['train/num_steps'] == 3 * 36).all()
  assert summary['rounds_to_target'] == 3.0  # First evaluation already above 5%.
  assert summary['final_accuracy'] == frame['eval/accuracy'].iloc[-1]
