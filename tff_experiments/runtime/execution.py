"""Where a run's TFF computations execute: a private local worker, or the `--workers`."""

from typing import ContextManager

import tensorflow_federated as tff

from tff_experiments import sections
from tff_experiments.runtime import local_worker
from tff_experiments.runtime import remote_workers
from tff_experiments.runtime import watchdog


def check(run: sections.RunSettings, client_data: tff.simulation.datasets.ClientData) -> None:
  """Before the run directory is touched: the `--workers` answer and read the client data
  (remote_workers.RemoteWorkerError otherwise); nothing to check for a local worker."""
  if run.workers:
    remote_workers.check_workers(run.workers, timeout_s=run.worker_connect_timeout_s,
                                 client_data=client_data)


def context(run: sections.RunSettings, *, log_path: str) -> ContextManager[watchdog.Watchdog]:
  """The execution context of the run's TFF computations, yielding its watchdog: the
  `--workers` if given, else a private local worker logging to `log_path`."""
  if run.workers:
    return remote_workers.remote_workers(run.workers, timeout_s=run.worker_connect_timeout_s)
  return local_worker.local_worker(log_path=log_path)
