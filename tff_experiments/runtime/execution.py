"""Where a run's TFF computations execute: a private local worker, or the `--workers`.

Takes the run's worker settings as plain values (`--workers`, `--worker_connect_timeout_s`),
so the runtime stays below the settings that describe it.
"""

from typing import ContextManager, Optional, Sequence

import tensorflow_federated as tff

from tff_experiments.runtime import local_worker
from tff_experiments.runtime import remote_workers
from tff_experiments.runtime import watchdog


def check(workers: Optional[Sequence[str]], *, connect_timeout_s: float,
          client_data: tff.simulation.datasets.ClientData) -> None:
  """Before the run directory is touched: the `workers` answer and read the client data
  (remote_workers.RemoteWorkerError otherwise); nothing to check for a local worker."""
  if workers:
    remote_workers.check_workers(workers, timeout_s=connect_timeout_s, client_data=client_data)


def context(workers: Optional[Sequence[str]], *, connect_timeout_s: float,
            log_path: str) -> ContextManager[watchdog.Watchdog]:
  """The execution context of the run's TFF computations, yielding its watchdog: the
  `workers` if given, else a private local worker logging to `log_path`."""
  if workers:
    return remote_workers.remote_workers(workers, timeout_s=connect_timeout_s)
  return local_worker.local_worker(log_path=log_path)
