"""A sweep's progress: done / running / failed counts with an ETA, as a line per event (and a
tqdm bar when stderr is a terminal), and its closing report."""

import os
import sys
import time

import tqdm

from tff_experiments.sweeps import state


class Progress:
  """Reports the points of `sweep` as they start and finish; `total`: the points to run."""

  def __init__(self, sweep: state.SweepFile, total: int):
    self._sweep, self._total, self._began = sweep, total, time.monotonic()
    self._bar = tqdm.tqdm(total=total, unit='run', disable=None, file=sys.stderr,
                          dynamic_ncols=True)

  def counts(self) -> str:
    """E.g. '[3/12 finished: 2 done, 2 running, 1 failed; ETA 01:05]'. The ETA assumes the
    runs still to finish take as long, per finished run, as those so far."""
    counts = self._sweep.counts()
    finished = counts[state.DONE] + counts[state.FAILED]
    elapsed = time.monotonic() - self._began
    eta = ('?' if not finished else
           tqdm.tqdm.format_interval(elapsed / finished * (self._total - finished)))
    return (f'[{finished}/{self._total} finished: {counts[state.DONE]} done, '
            f'{counts[state.RUNNING]} running, {counts[state.FAILED]} failed; ETA {eta}]')

  def say(self, text: str) -> None:
    """One line on stdout, prefixed by the counts."""
    self._bar.set_postfix_str(self.counts()[1:-1], refresh=False)
    tqdm.tqdm.write(f'{self.counts()} {text}', file=sys.stdout)
    sys.stdout.flush()

  def finished(self) -> None:
    """One more point has finished (done or failed)."""
    self._bar.update(1)

  def close(self) -> None:
    self._bar.close()


def describe(point: state.Point) -> str:
  """One line on a finished point: its state, status and time, or why it failed."""
  if point.state == state.FAILED:
    return f'FAILED {point.name} (exit {point.exit_code}): {point.message}; log: {point.log}'
  return f'{point.state} {point.name} ({point.status}, {point.seconds:.0f} s)'


def report(sweep: state.SweepFile) -> int:
  """Prints the sweep's outcome (counts, diverged and failed runs, how to compare them); the
  exit code: 1 if any run failed, else 0."""
  counts = sweep.counts()
  failed = [p for p in sweep.points if p.state == state.FAILED]
  diverged = [p.name for p in sweep.points if p.status == 'diverged']
  print(f'sweep {sweep.header["sweep_name"]}: {len(sweep.points)} runs: '
        f'{counts[state.DONE]} done, {counts[state.SKIPPED]} already done (skipped), '
        f'{len(failed)} failed; results in {os.path.dirname(sweep.path)}')
  if diverged:
    print(f'diverged (a result, not a failure): {", ".join(diverged)}')
  for point in failed:
    print(f'failed: {point.name}: {point.message}\n  log: {point.log}', file=sys.stderr)
  print(f'compare: python -m launch.compare {os.path.dirname(sweep.path)} '
        f'--output_dir={os.path.dirname(sweep.path)}/comparison')
  return 1 if failed else 0
