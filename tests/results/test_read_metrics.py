"""metrics.csv read as far as it goes: an intact file as pandas reads it, a damaged one up to
the first damaged row with a line saying what could not be read."""

import pandas as pd
import pytest

from tff_experiments.results import read_metrics


def _metrics(path, rounds=20):
  """metrics.csv of `rounds` rounds (as pandas writes it; pandas reads it back as reference)."""
  pd.DataFrame({'round_num': range(1, rounds + 1),
                'eval/accuracy': [0.1 + 0.01 * r for r in range(rounds)],
                'round_time_s': [0.5] * rounds}).to_csv(path, index=False)
  return pd.read_csv(path)


def test_an_intact_file_reads_as_pandas_reads_it(tmp_path):
  expected = _metrics(tmp_path / 'metrics.csv')
  frame, problem = read_metrics.read(str(tmp_path / 'metrics.csv'))
  pd.testing.assert_frame_equal(frame, expected)
  assert problem is None


def test_non_utf8_bytes_appended_keep_every_row_before_them(tmp_path):
  path = tmp_path / 'metrics.csv'
  expected = _metrics(path)
  size = path.stat().st_size
  with open(path, 'ab') as f:
    f.write(b'\xff\xfe\xfd')
  frame, problem = read_metrics.read(str(path))
  pd.testing.assert_frame_equal(frame, expected)  # All 20 rows.
  assert problem == (f'metrics.csv: bytes that are not UTF-8 at byte {size}; 20 row(s) before '
                     'them read')


@pytest.mark.parametrize('damage,rows,what', [
    (lambda text: text[:-3], 19, 'line 21 is damaged (cut short)'),
    (lambda text: text.replace('\n6,', '\n6,0.1\nx,', 1), 5, 'line 7 is damaged (2 fields'),
    (lambda text: text.replace('\n6,', '\nsix,', 1), 5, "line 7 is damaged (round 'six')"),
])
def test_a_damaged_row_keeps_the_rows_before_it(tmp_path, damage, rows, what):
  path = tmp_path / 'metrics.csv'
  expected = _metrics(path)
  path.write_text(damage(path.read_text()))
  frame, problem = read_metrics.read(str(path))
  pd.testing.assert_frame_equal(frame, expected.iloc[:rows])
  assert problem.startswith(f'metrics.csv: {what}') and f'{rows} row(s) before them' in problem


def test_empty_garbled_and_missing_files(tmp_path):
  (tmp_path / 'empty.csv').write_bytes(b'')
  (tmp_path / 'garbled.csv').write_text('lorem ipsum\ndolor,sit\n')
  frame, problem = read_metrics.read(str(tmp_path / 'empty.csv'))
  assert len(frame) == 0 and problem == 'metrics.csv is empty'
  frame, problem = read_metrics.read(str(tmp_path / 'garbled.csv'))
  assert len(frame) == 0 and problem.startswith(
      "metrics.csv: its header is not a metrics header ('lorem ipsum')")
  frame, problem = read_metrics.read(str(tmp_path / 'missing.csv'))
  assert len(frame) == 0 and problem is None  # A run before its first round.


def test_rounds_missing_against_the_summary(tmp_path):
  path = tmp_path / 'metrics.csv'
  frame = _metrics(path, rounds=12)
  assert read_metrics.missing_rounds(str(path), frame, 20) == (
      'metrics.csv holds rounds up to 12 of the 20 summary.json records')
  assert read_metrics.missing_rounds(str(path), frame, 12) is None
  assert read_metrics.missing_rounds(str(tmp_path / 'none.csv'), frame.iloc[:0], 5) == (
      'metrics.csv is missing (summary.json records 5 rounds)')
