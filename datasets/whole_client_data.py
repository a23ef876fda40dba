"""A ClientData that reads (or draws) each client's examples at once, as whole tensors.

Training gathers its batches from a client's whole tensors by shuffled indices
(`tff_experiments.clients.client_data`), so no example passes through tf.data one by one; the
client's dataset, for everything else, is those tensors' rows.
"""

import collections
from collections.abc import Callable, Sequence
from typing import Optional

import tensorflow as tf
import tensorflow_federated as tff

ExamplesFn = Callable[[tf.Tensor], collections.OrderedDict]


class WholeClientData(tff.simulation.datasets.ClientData):
  """Clients given by `examples_fn(client_id) -> OrderedDict of [n, ...] tensors`, a graph
  function of the id tensor (it closes over small constants only, so it serializes cheaply)."""

  def __init__(self, client_ids: Sequence[str], examples_fn: ExamplesFn, *,
               where: str = 'this ClientData'):
    self._where = where  # For the message on an unknown client id.
    self._client_ids = sorted(client_ids)
    self._known = frozenset(self._client_ids)
    self._examples_fn = examples_fn

    def serializable_dataset_fn(client_id) -> tf.data.Dataset:
      # A tf.data pipeline over the id (no eager tensors), so a serialized dataset is small.
      return tf.data.Dataset.from_tensors(client_id).map(examples_fn).unbatch()

    self._serializable_dataset_fn = serializable_dataset_fn
    self._element_type_structure = serializable_dataset_fn(
        tf.constant(self._client_ids[0])).element_spec

  @property
  def serializable_examples_fn(self) -> ExamplesFn:
    """client id tensor -> the client's examples as tensors [n, ...], in dataset order."""
    return self._examples_fn

  @property
  def client_ids(self) -> list[str]:
    return self._client_ids

  @property
  def serializable_dataset_fn(self):
    return self._serializable_dataset_fn

  @property
  def element_type_structure(self):
    return self._element_type_structure

  def read_failure(self, error: BaseException) -> Optional[str]:
    """What made a computation reading these clients fail with `error`, in one line, if it is
    their storage's fault (files gone); None otherwise. Drawn clients have no storage."""
    del error
    return None

  def create_tf_dataset_for_client(self, client_id: str) -> tf.data.Dataset:
    if client_id not in self._known:
      raise ValueError(f'no client {client_id!r} in {self._where}')
    return self._serializable_dataset_fn(tf.constant(client_id))
