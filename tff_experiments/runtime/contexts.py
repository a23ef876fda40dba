"""TFF execution contexts over gRPC to a C++ `worker_binary`, local or on another machine.

One channel per worker, with message limits large enough for a model and a channel that never
idles out (a quiet channel would otherwise read as an unreachable worker to the watchdog).
"""

import time
from typing import Callable, Optional

import grpc
import tensorflow_federated as tff

_GRPC_MAX_MESSAGE_BYTES = 2 * 1000 * 1000 * 1000
_NEVER_MS = 2**31 - 1
GRPC_OPTIONS = (
    ('grpc.max_message_length', _GRPC_MAX_MESSAGE_BYTES),
    ('grpc.max_receive_message_length', _GRPC_MAX_MESSAGE_BYTES),
    ('grpc.max_send_message_length', _GRPC_MAX_MESSAGE_BYTES),
    ('grpc.client_idle_timeout_ms', _NEVER_MS),
)


class Channel:
  """A gRPC channel to one worker that tracks its connectivity (for readiness and liveness)."""

  def __init__(self, target: str):
    self.target = target
    self.grpc_channel = grpc.insecure_channel(target, options=list(GRPC_OPTIONS))
    self.state: Optional[grpc.ChannelConnectivity] = None
    self.since = time.monotonic()  # When `state` was entered.
    self.grpc_channel.subscribe(self._on_change, try_to_connect=True)
    self.stub = tff.framework.RemoteExecutorGrpcStub(self.grpc_channel)

  def _on_change(self, state: grpc.ChannelConnectivity) -> None:
    if state != self.state:
      self.state, self.since = state, time.monotonic()

  @property
  def is_ready(self) -> bool:
    return self.state == grpc.ChannelConnectivity.READY

  def down_for(self) -> float:
    """Seconds since the channel was last READY (0 while it is)."""
    return 0.0 if self.is_ready else time.monotonic() - self.since

  def close(self) -> None:
    self.grpc_channel.unsubscribe(self._on_change)
    self.grpc_channel.close()


def wait_until_ready(channel: Channel, *, timeout_s: float,
                     failure: Callable[[], Optional[str]] = lambda: None) -> Optional[str]:
  """Waits for `channel` to connect; None when ready, else why not (`failure()`'s message, e.g.
  the worker process exited, or the timeout)."""
  deadline = time.monotonic() + timeout_s
  while not channel.is_ready:
    message = failure()
    if message:
      return message
    if time.monotonic() > deadline:
      return f'no TFF worker answered at {channel.target} within {timeout_s:.0f} s'
    time.sleep(0.05)
  return None


def _executor_factory(stub) -> tff.framework.ResourceManagingExecutorFactory:
  def executor_fn(cardinalities):
    # Computations without client arguments (e.g. initialize) still need a CLIENTS cardinality.
    cardinalities.setdefault(tff.CLIENTS, 0)
    executor = tff.framework.RemoteExecutor(stub)
    executor.set_cardinalities(cardinalities)
    return executor
  return tff.framework.ResourceManagingExecutorFactory(executor_fn)


def _context_args(channel: Channel, compiler_fn=None) -> dict:
  return dict(executor_fn=_executor_factory(channel.stub),
              compiler_fn=compiler_fn or tff.backends.native.desugar_and_transform_to_native,
              transform_args=tff.tensorflow.transform_args,
              transform_result=tff.tensorflow.transform_result)


def sync_context(channel: Channel) -> tff.framework.SyncExecutionContext:
  """A synchronous TFF context executing everything on the worker behind `channel`."""
  return tff.framework.SyncExecutionContext(**_context_args(channel))


def async_context(channel: Channel, *,
                  compiler_fn: Optional[Callable] = None) -> tff.framework.AsyncExecutionContext:
  """An asynchronous TFF context on the worker behind `channel` (a part of a mergeable one);
  `compiler_fn` defaults to TFF's native one."""
  return tff.framework.AsyncExecutionContext(**_context_args(channel, compiler_fn))
