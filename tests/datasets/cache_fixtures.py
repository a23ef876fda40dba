"""Client arrays and a reader shared by the client-file and cache-directory tests."""

import numpy as np


def uint8_clients(seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  rng = np.random.default_rng(seed)
  # Sizes straddle the reader's parse batch (256) to cover partial batches.
  return {cid: (rng.integers(0, 256, size=(n, 6, 5, 1), dtype=np.uint8),
                rng.integers(0, 62, size=n))
          for cid, n in [('b', 3), ('a', 300), ('c', 1)]}


def read_client(client_data, client_id):
  elements = list(client_data.create_tf_dataset_for_client(client_id))
  return (np.stack([e['x'].numpy() for e in elements]),
          np.array([e['y'].numpy() for e in elements]))
