"""Sweep backends by `--backend`: how a sweep's runs are executed.

  local  child processes of the sweep (`pool.Pool`)
  ray    Ray tasks, on a local Ray instance or a cluster (`ray_pool.RayPool`, `--ray_address`)

Each builds a runner with the same interface: `run(jobs)` runs them, at most `parallel` at a
time, reporting through `on_start(job)` and `on_exit(job, exit_code, seconds)`; `stop()` stops
them cleanly (each run writes its summary as `interrupted`). The runs, their command lines and
their results directories are the same whichever backend runs them, so skipping finished runs
and resuming unfinished ones do not depend on it.
"""

import dataclasses
from typing import Callable, Optional, Protocol, Sequence

from tff_experiments.core import registry
from tff_experiments.sweeps import pool
from tff_experiments.sweeps import ray_pool

BackendError = pool.BackendError


class Runner(Protocol):
  """What a backend builds (`pool.Pool`, `ray_pool.RayPool`)."""

  def run(self, jobs: Sequence[pool.Job]) -> None:
    ...

  def stop(self) -> None:
    ...


@dataclasses.dataclass(frozen=True)
class Backend:
  """One way to run the jobs: `build(parallel, *, cpus_per_job, address, on_start, on_exit)`;
  `require(address)` raises BackendError before the sweep starts if it cannot run here."""
  build: Callable[..., Runner]
  require: Callable[[Optional[str]], None] = lambda address: None
  takes_address: bool = False   # Whether --ray_address means something to it.


def _local(parallel: int, *, cpus_per_job: int, address: Optional[str], **callbacks) -> Runner:
  del cpus_per_job, address  # The children share this machine's cores (threads_per_job).
  return pool.Pool(parallel, **callbacks)


def _ray(parallel: int, *, cpus_per_job: int, address: Optional[str], **callbacks) -> Runner:
  return ray_pool.RayPool(parallel, cpus_per_job=cpus_per_job, address=address, **callbacks)


BACKENDS: registry.Registry[Backend] = registry.Registry('sweep backend', flag='backend', entries={
    'local': Backend(build=_local),
    'ray': Backend(build=_ray, require=lambda address: ray_pool.import_ray(local=not address),
                   takes_address=True),
})


def check(name: str, address: Optional[str]) -> Backend:
  """The backend `name`, checked to run with `address` (BackendError naming the flag)."""
  backend = BACKENDS.get(name)
  if address and not backend.takes_address:
    raise BackendError(f'--ray_address={address} needs --backend=ray (not --backend={name})')
  backend.require(address)
  return backend
