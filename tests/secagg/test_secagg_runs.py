"""Secure aggregation in real runs: the model of the plain run up to rounding, drop-outs
unmasked, aborted rounds, resume, and nothing unmasked crossing to the server."""

import numpy as np
import pandas as pd
import pytest

import federated_types
import run_helpers
from tff_experiments import experiment
from tff_experiments.results import run_dir
from tff_experiments.secagg import rounds

pytestmark = pytest.mark.usefixtures('tff_worker')


@pytest.fixture
def digits_config(digits_config):
  """The shared digits runs, 3 rounds of 4 clients (a cohort the threshold can split)."""
  return lambda name, **overrides: digits_config(
      name, **{'total_rounds': 3, 'clients_per_round': 4, **overrides})


@pytest.mark.parametrize('mode', ['masking', 'two_server'])
def test_a_secure_run_is_the_plain_run_up_to_rounding(digits_config, mode):
  plain, _ = run_helpers.run(digits_config('plain'))
  secure, summary = run_helpers.run(digits_config(mode, secure_aggregation=mode))
  columns = ['train/loss', 'train/accuracy', 'eval/loss', 'eval/accuracy']
  want, got = run_helpers.metrics(plain), run_helpers.metrics(secure)
  pd.testing.assert_frame_equal(got[columns], want[columns], rtol=1e-4)
  assert (got['secagg/aborted'] == 0).all() and (got['secagg/clients_masked'] == 4).all()
  # On top: the range histograms (4 clients, 4 tensors of 97 buckets at 32 bits, per server)
  # and, with masking, key agreement and shares.
  servers = 2 if mode == 'two_server' else 1
  extra = 4 * servers * 4 * 97 * 32 + got['secagg/key_agreement_bits'] + got['secagg/share_bits']
  assert (got['secagg/uplink_bits_round'] == got['comm/uplink_bits_round'] + extra).all()
  assert (got['secagg/key_agreement_bits'] > 0).all() == (mode == 'masking')
  assert summary['status'] == 'completed'


def test_a_round_with_drop_outs_is_the_plain_mean_of_the_survivors(digits_config):
  flags = dict(secure_aggregation='masking', secagg_dropout_rate=0.4, secagg_threshold=1)
  config = digits_config('drops', **flags)
  data = experiment.load_data(config)
  model = experiment.build_model(config, data)
  secure = experiment.build_rounds(config, data, model)
  plain = experiment.build_rounds(digits_config('plain'), data, model).process
  planner = experiment.build_planner(config, data)
  state, plain_state, dropped = secure.initialize(), plain.initialize(), 0
  for round_num in (1, 2, 3):
    plan = planner.plan(round_num)
    gone = rounds.dropped_after_masking(plan.reporting, rate=0.4, seed=config.run.seed,
                                        round_num=round_num)
    if len(gone) == len(plan.reporting):
      continue
    dropped += len(gone)
    got = secure.run(state, plan)
    plain_state = plain.set_model_weights(plain_state, secure.get_model_weights(state))
    want = plain.next(plain_state, [t for t in plan.tasks() if t['client_id'] not in gone])
    for g, w in zip(secure.get_model_weights(got.state).trainable,
                    plain.get_model_weights(want.state).trainable):
      np.testing.assert_allclose(g, w, atol=1e-6)
    state, plain_state = got.state, want.state
  assert dropped > 0


def test_too_few_survivors_abort_the_round_and_the_next_one_proceeds(digits_config):
  paths, summary = run_helpers.run(digits_config(
      'abort', secure_aggregation='masking', secagg_threshold=4, secagg_dropout_rate=0.15,
      total_rounds=6))
  rows = run_helpers.metrics(paths)
  aborted = rows['round_status'] == 'aborted'
  assert list(aborted) == list(rows['secagg/aborted'] == 1)
  assert aborted.any() and not aborted.all() and summary['rounds_aborted'] == aborted.sum()
  for i in np.flatnonzero(aborted)[np.flatnonzero(aborted) > 0]:  # The model did not change,
    assert rows['eval/loss'][i] == rows['eval/loss'][i - 1]
  # ... and the round after an aborted one trains it.
  after = [i + 1 for i in np.flatnonzero(aborted) if i + 1 < len(rows) and not aborted[i + 1]]
  assert after and all(rows['eval/loss'][i] != rows['eval/loss'][i - 1] for i in after)


def test_a_resumed_secure_run_equals_an_uninterrupted_one(digits_config):
  flags = dict(secure_aggregation='masking', secagg_dropout_rate=0.3, secagg_threshold=2,
               total_rounds=4)
  full, _ = run_helpers.run(digits_config('full', **flags))
  config = digits_config('cut', **flags)
  with pytest.raises(RuntimeError, match='simulated crash'):
    run_helpers.run(config, out=run_helpers.CrashAfter(3))
  run_helpers.run(config)
  drop = ['secagg/protocol_time_s']
  pd.testing.assert_frame_equal(run_helpers.metrics(full).drop(columns=drop),
                                run_helpers.metrics(run_dir.paths_of(config)).drop(columns=drop),
                                check_exact=True)


def test_no_unmasked_update_crosses_to_the_server_in_a_whole_round(digits_config):
  config = digits_config('structure', secure_aggregation='masking', clip_norm=10.0,
                         quantization='uniform')
  data = experiment.load_data(config)
  model = experiment.build_model(config, data)
  process = experiment.build_rounds(config, data, model)
  shapes = {tuple(np.shape(w)) for w in model.initial_weights.trainable}
  crossing = [(uri, t) for uri, m in federated_types.client_to_server(process.next)
              for t in federated_types.tensors(m) if tuple(t.shape) in shapes]
  assert crossing and all(uri == 'federated_sum' and t.dtype == np.int64 for uri, t in crossing)



@pytest.mark.slow  # Three 6-round runs of 10 clients.
def test_8_and_16_bit_secure_aggregation_train_as_32_bits_do(digits_config):
  flags = dict(secure_aggregation='masking', clients_per_round=10, total_rounds=6,
               rounds_per_checkpoint=6)
  accuracy, columns = {}, {}
  for bits in (32, 16, 8):
    paths, _ = run_helpers.run(digits_config(f'b{bits}', secagg_bits=bits, **flags))
    rows = run_helpers.metrics(paths)
    accuracy[bits], columns[bits] = rows['eval/accuracy'], rows
  for bits in (16, 8):  # The encoding's noise is small against the update, and it shows.
    assert (columns[bits]['secagg/encoding_relative_error'] < 0.5).all()
    assert (columns[bits]['secagg/levels'] == (2**(bits - 1) - 1) // 10).all()
  assert (columns[32]['secagg/encoding_relative_error'] < 1e-6).all()
  assert abs(accuracy[16].iloc[-1] - accuracy[32].iloc[-1]) <= 0.03
  assert abs(accuracy[8].iloc[-1] - accuracy[32].iloc[-1]) <= 0.05
  assert accuracy[8].iloc[-1] >= accuracy[8].iloc[0] + 0.1  # It trains (0.77 -> 0.94 here).
