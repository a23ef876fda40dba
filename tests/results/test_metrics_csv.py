"""Flattening of nested round metrics into stable columns; the atomic metrics CSV."""

import collections
import os

import numpy as np
import pandas as pd

from tff_experiments.results import metrics_csv as metrics


def _round_metrics(loss):
  return collections.OrderedDict(
      distributor=(),
      client_work=collections.OrderedDict(train=collections.OrderedDict(
          loss=np.float32(loss), accuracy=np.float32(0.5), num_examples=np.int64(12),
          num_steps=np.int64(4))),
      aggregator=collections.OrderedDict(mean_value=(), mean_weight=()),
      finalizer=collections.OrderedDict(update_non_finite=np.int32(0)))


def test_row_has_documented_leading_columns_then_the_rest():
  row = metrics.row(round_metrics=_round_metrics(1.5), eval_metrics=None,
                    round_time_s=0.25, eval_time_s=None)
  assert list(row) == list(metrics.LEADING_COLUMNS) + ['train/num_steps',
                                                      'finalizer/update_non_finite']
  assert row['train/loss'] == 1.5 and row['num_examples'] == 12
  assert row['eval/accuracy'] is None and row['eval_time_s'] is None


def test_evaluation_metrics_are_eval_columns_unless_they_name_their_own_group():
  row = metrics.row(round_metrics=None, round_time_s=0.25, eval_time_s=0.5,
                    eval_metrics={'accuracy': 0.75, 'num_examples': 10,
                                  'personalization/after_accuracy_mean': 0.5})
  assert row['eval/accuracy'] == 0.75 and row['eval/num_examples'] == 10
  assert row['personalization/after_accuracy_mean'] == 0.5


def test_flatten_names_nested_values_and_drops_empty_containers():
  flat = metrics.flatten({'a': {'b': 1, 'c': ()}, 'd': [2, 3]})
  assert flat == {'a/b': 1, 'd/0': 2, 'd/1': 3}


def test_rewriting_a_round_drops_it_and_later_rows(tmp_path):
  path = str(tmp_path / 'metrics.csv')
  writer = metrics.MetricsCsv(path)
  for r in (1, 2, 3):
    writer.write(r, metrics.row(round_metrics=_round_metrics(r), eval_metrics={'loss': 1.0,
                 'accuracy': 0.1 * r}, round_time_s=0.1, eval_time_s=0.01))
  # A resumed run (new writer on the same file) redoes round 2.
  metrics.MetricsCsv(path).write(2, metrics.row(round_metrics=_round_metrics(20.0),
                                                eval_metrics=None, round_time_s=0.1,
                                                eval_time_s=None))
  frame = pd.read_csv(path)
  assert list(frame['round_num']) == [1, 2]
  assert list(frame['train/loss']) == [1.0, 20.0]
  assert np.isnan(frame['eval/accuracy'][1])
  assert list(frame.columns[:3]) == ['round_num', 'train/loss', 'train/accuracy']
  assert [f for f in os.listdir(tmp_path)] == ['metrics.csv']  # No temp files left.


def test_new_columns_are_appended(tmp_path):
  path = str(tmp_path / 'metrics.csv')
  writer = metrics.MetricsCsv(path)
  writer.write(1, {'a': 1})
  writer.write(2, {'a': 2, 'b': 3})
  frame = pd.read_csv(path)
  assert list(frame.columns) == ['round_num', 'a', 'b']
  assert np.isnan(frame['b'][0]) and frame['b'][1] == 3


def test_a_row_with_fields_missing_or_extra_is_unreadable(tmp_path):
  path = tmp_path / 'metrics.csv'
  for text in ('round_num,a,b\n1,0.5,0.25\n2,0.5\n',       # Cut off after a field.
               'round_num,a,b\n1,0.5,0.25\n2,0.5,0.1,9\n'):  # One field too many.
    path.write_text(text)
    try:
      metrics.MetricsCsv(str(path))
    except metrics.MetricsCsvError as e:
      assert str(path) in str(e)
    else:
      raise AssertionError(f'{text!r} was read as intact')
  path.write_text('round_num,a,b\n1,0.5,0.25\n2,,\n')  # Blank values are values.
  assert metrics.MetricsCsv(str(path)).rounds() == [1, 2]
