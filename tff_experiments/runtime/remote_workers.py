"""One simulation over TFF worker services on other machines (`python -m launch.worker`).

With several workers, TFF's mergeable execution context runs each round in sub-rounds: every
worker trains its share of the round's clients (the cohort split in order, ceil(n/k) each) up
to the aggregation, partial aggregates are merged, and the rest of the round runs once. Client
data is not sent: a round ships client tasks (ids, seeds) and each worker reads the clients'
files itself, at the driver's `--cache_dir` path (a shared filesystem, or a copy at the same
path); `check_workers` verifies before the run that every worker sees the same copy.

TFF's gRPC stub retries an unreachable worker for ever; here a worker that does not answer at
start, or whose connection stays down during the run, fails the run within
`--worker_connect_timeout_s` (resumable from its last checkpoint).
"""

import collections
import contextlib
import re
from typing import Iterator, Optional, Sequence

import tensorflow as tf
import tensorflow_federated as tff

from datasets import client_file_reader
from tff_experiments.core import stderr_filter
from tff_experiments.runtime import contexts
from tff_experiments.runtime import watchdog

# host:port, host a name, IPv4 address or [IPv6] address.
_TARGET = re.compile(r'^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$')
# unix:/absolute/path, a worker's socket file (`launch.worker --socket`, e.g. through SSH).
_UNIX_TARGET = re.compile(r'^unix:/[^,]*[^,/]$')
# TF's grappler says this, at ERROR level, for every graph TFF's mergeable compiler builds.
_GRAPPLER_NOISE = re.compile(rb'grappler_item_builder\.cc:\d+\] Failed to detect the fetch '
                             rb'node\(s\), skipping this input')
_HASH_BUCKETS = 2**62
_START_HINT = ('start one there with `python -m launch.worker --port=PORT` (or --socket=PATH), '
               'or fix --workers=host:port,...')


class RemoteWorkerError(RuntimeError):
  """A --workers worker cannot serve this run (unreachable, or it cannot read the data)."""


def target_error(target: str) -> Optional[str]:
  """Why `target` is not a worker address, `host:port` (port 1-65535) or `unix:/path/of.sock`,
  or None if it is."""
  if _UNIX_TARGET.match(target):
    return None
  match = _TARGET.match(target)
  if not match or not 1 <= int(match.group(2)) <= 65535:
    return f'{target!r} is not host:port (port 1-65535) or unix:/path/of/socket'
  return None


def _files_check(files: client_file_reader.ClientFiles) -> tff.Computation:
  """A computation, run on one worker, reporting what it sees of the client files."""

  @tff.tensorflow.computation
  def check():
    found = tf.size(tf.io.matching_files(files.meta_path)) > 0
    meta = tf.cond(found, lambda: tf.io.read_file(files.meta_path), lambda: tf.constant(''))
    return collections.OrderedDict(
        meta_found=found, meta_hash=tf.strings.to_hash_bucket_fast(meta, _HASH_BUCKETS),
        num_files=tf.size(tf.io.matching_files(files.file_pattern)))

  return check


def _files_problem(seen, files: client_file_reader.ClientFiles) -> Optional[str]:
  """What is wrong with a worker's view of the client files (`_files_check`'s result)."""
  expected = len(files.client_ids)
  if not seen['meta_found']:
    return f'{files.meta_path} does not exist there'
  if int(seen['meta_hash']) != int(tf.strings.to_hash_bucket_fast(files.meta_text,
                                                                  _HASH_BUCKETS)):
    return f'{files.meta_path} there differs from the driver\'s (another copy of the data)'
  if seen['num_files'] < expected:
    return f'only {seen["num_files"]} of the {expected} client files are in {files.directory}'
  return None


def _connect(targets: Sequence[str], timeout_s: float) -> list[contexts.Channel]:
  """Channels to every target, each ready within `timeout_s`, else RemoteWorkerError."""
  channels = [contexts.Channel(target) for target in targets]
  try:
    for channel in channels:
      failure = contexts.wait_until_ready(channel, timeout_s=timeout_s)
      if failure:
        raise RemoteWorkerError(f'--workers: {failure} (--worker_connect_timeout_s); '
                                f'{_START_HINT}')
  except BaseException:
    _close(channels)
    raise
  return channels


def _close(channels: Sequence[contexts.Channel]) -> None:
  for channel in channels:
    channel.close()


def check_workers(targets: Sequence[str], *, timeout_s: float,
                  client_data: tff.simulation.datasets.ClientData) -> None:
  """Before a run: every worker answers within `timeout_s` and reads the same client files as
  the driver (when the clients are files). Raises RemoteWorkerError saying what is wrong."""
  channels = _connect(targets, timeout_s)
  try:
    if not isinstance(client_data, client_file_reader.ClientFiles):
      return
    check = _files_check(client_data)
    for channel in channels:
      with tff.framework.get_context_stack().install(contexts.sync_context(channel)):
        problem = _files_problem(check(), client_data)
      if problem:
        raise RemoteWorkerError(
            f'--workers: the worker at {channel.target} cannot read the client data: '
            f'{problem}. Workers read each client\'s file at the driver\'s path: put '
            '--cache_dir on a filesystem every machine mounts at the same path, or copy '
            f'{client_data.directory} to that path on each worker machine')
  finally:
    _close(channels)


def _liveness_probe(channels: Sequence[contexts.Channel], timeout_s: float) -> watchdog.Probe:
  """Fails when a worker's connection has been down for `timeout_s`."""
  def probe() -> Optional[str]:
    for channel in channels:
      down = channel.down_for()
      if down > timeout_s:
        return (f'the TFF worker at {channel.target} has been unreachable for {down:.0f} s '
                '(--worker_connect_timeout_s); see its log; restart it and run the same '
                'command again to resume')
    return None
  return probe


def _quietly(compiler_fn):
  """`compiler_fn` without grappler's "Failed to detect the fetch node(s)" lines: compiling the
  sub-round pieces of a computation prints one per piece, harmless, at ERROR level."""
  def compile_quietly(computation):
    with stderr_filter.filtered(lambda line: _GRAPPLER_NOISE.search(line) is not None):
      return compiler_fn(computation)
  return compile_quietly


def _context(channels: Sequence[contexts.Channel]) -> tff.framework.SyncContext:
  """One worker: a plain context on it; several: TFF's mergeable context over them all."""
  if len(channels) == 1:
    return contexts.sync_context(channels[0])
  return tff.framework.MergeableCompExecutionContext(
      [contexts.async_context(
          channel, compiler_fn=_quietly(tff.backends.native.desugar_and_transform_to_native))
       for channel in channels],
      compiler_fn=tff.backends.native.compile_to_mergeable_comp_form,
      transform_args=tff.tensorflow.transform_args,
      transform_result=tff.tensorflow.transform_result)


@contextlib.contextmanager
def remote_workers(targets: Sequence[str], *,
                   timeout_s: float) -> Iterator[watchdog.Watchdog]:
  """Runs TFF computations on the workers at `targets` for the duration of the block.

  Yields a `watchdog.Watchdog`: a worker whose connection stays down for `timeout_s` fails
  the block with `watchdog.WorkerFailure` instead of hanging in gRPC retries.
  """
  channels = _connect(targets, timeout_s)
  try:
    with tff.framework.get_context_stack().install(_context(channels)), watchdog.Watchdog(
        _liveness_probe(channels, timeout_s),
        where=f'the logs of the workers at {",".join(targets)}') as guard:
      yield guard
  finally:
    _close(channels)
