"""launch.sweep --backend=ray end to end: a 4-run digits sweep on a local Ray instance with one
failing run, then a re-run that skips the 3 completed ones; no Ray process is left behind."""

import time
import uuid

import pytest

import sweep_helpers

pytest.importorskip(
    'ray', reason='Ray is an optional extra: pip install --no-deps -r requirements-ray.lock')
pytestmark = pytest.mark.slow


def test_ray_sweep_with_a_failing_run_then_a_rerun_that_skips_the_completed_ones(tmp_path):
  # Every process the sweeps start (Ray's, the runs) inherits this variable: those are the
  # ones that must be gone afterwards, whatever else runs on the machine.
  mark = ('TFF_EXPERIMENTS_TEST_SWEEP', uuid.uuid4().hex)
  cache_dirs = [str(tmp_path / f'cache{i}') for i in range(3)]
  cache_dirs.append(sweep_helpers.failing_cache_dir(tmp_path))
  saved, output = sweep_helpers.check_failing_sweep_then_rerun(
      tmp_path, '--backend=ray', '--parallel=2', '--grid', f'cache_dir={",".join(cache_dirs)}',
      env=dict([mark]))
  assert len(saved['points']) == 4 and sum(p['state'] == 'skipped' for p in saved['points']) == 3
  assert saved['backend'] == 'ray' and saved['ray_address'] is None
  assert '(backend ray, parallel 2,' in output
  deadline = time.monotonic() + 10
  while left := sweep_helpers.processes_with(*mark):  # Each sweep stopped the Ray it started.
    assert time.monotonic() < deadline, f'processes left behind: {left}'
    time.sleep(0.2)
