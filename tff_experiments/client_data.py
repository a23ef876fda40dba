"""Client datasets built inside the TFF runtime from keys, so a round ships only strings.

A key is `"<shuffle_seed>|<client_id>"`. The dataset computation looks the client up in a
file-backed `ClientData`, shuffles with the key's seed (a fresh order each epoch, as in
McMahan et al.), repeats for the local epochs and batches. Seeds are functions of
(run seed, round, client), so a run is reproducible and resumable.
"""

import hashlib

import numpy as np
import tensorflow as tf
import tensorflow_federated as tff

_SEPARATOR = '|'
# Shuffle buffer: larger than any client of the supported datasets, so shuffles are uniform.
_SHUFFLE_BUFFER = 10_000


def client_keys(client_ids: list[str], *, seed: int, round_num: int) -> list[str]:
  """Keys for a round's cohort; each carries a shuffle seed fixed by (seed, round, client)."""
  keys = []
  for client_id in client_ids:
    # A stable hash of the client id (Python's hash() is salted per process).
    client_hash = int.from_bytes(hashlib.sha256(client_id.encode()).digest()[:8], 'little')
    seq = np.random.SeedSequence([seed, round_num, client_hash])
    shuffle_seed = int(seq.generate_state(1, np.uint64)[0]) >> 1  # Fits int64.
    keys.append(f'{shuffle_seed}{_SEPARATOR}{client_id}')
  return keys


def preprocess(dataset: tf.data.Dataset, *, shuffle_seed, epochs: int,
               batch_size: int) -> tf.data.Dataset:
  """Per-epoch seeded shuffle, `epochs` passes, batches of `batch_size` (last may be short)."""
  return (dataset.shuffle(_SHUFFLE_BUFFER, seed=shuffle_seed, reshuffle_each_iteration=True)
          .repeat(epochs)
          .batch(batch_size))


def build_dataset_computation(client_data: tff.simulation.datasets.ClientData, *,
                              epochs: int, batch_size: int) -> tff.Computation:
  """A `tff.tensorflow.computation` mapping a client key to its training dataset."""

  @tff.tensorflow.computation(np.str_)
  def dataset_from_key(key):
    parts = tf.strings.split(key, _SEPARATOR, maxsplit=1)
    shuffle_seed = tf.strings.to_number(parts[0], tf.int64)
    dataset = client_data.serializable_dataset_fn(parts[1])
    return preprocess(dataset, shuffle_seed=shuffle_seed, epochs=epochs, batch_size=batch_size)

  return dataset_from_key
