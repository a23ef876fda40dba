"""Tests for datasets.femnist_leaf on tiny LEAF JSON directories built here."""

import glob
import json
import os

import numpy as np
import pytest

from datasets import base
from datasets import femnist_leaf
from datasets import registry

SHARED_LEAF = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'shared', 'data',
                           'femnist_leaf')


def _user(labels, seed):
  rng = np.random.default_rng(seed)
  return {'x': (rng.integers(0, 256, (len(labels), 784)) / 255).tolist(), 'y': list(labels)}


def _write(path, users: dict) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps({'users': list(users), 'num_samples': [len(u['y']) for u in
                                                                     users.values()],
                              'user_data': users}))


def _leaf_dir(root):
  """Train: w2 and w1 (file 0), w3 letters only (file 1). Test: w1, w3, w9 (test only)."""
  train = {'w2': _user([0, 11, 5], 1), 'w1': _user([7, 7], 2), 'w3': _user([20, 44], 3)}
  test = {'w1': _user([7, 40], 4), 'w3': _user([33], 5), 'w9': _user([1, 2], 6)}
  _write(root / 'train' / 'a_train_0.json', {k: train[k] for k in ('w2', 'w1')})
  _write(root / 'train' / 'a_train_1.json', {'w3': train['w3']})
  _write(root / 'test' / 'a_test_0.json', test)
  return train, test


def _images(user, keep=None):
  x = np.asarray(user['x'], np.float64).reshape(-1, 28, 28, 1)
  y = np.asarray(user['y'])
  keep = np.ones(len(y), bool) if keep is None else keep(y)
  return (np.round(x[keep] * 255).astype(np.float32) / np.float32(255)), y[keep]


def _load(data_dir, cache_dir, *, only_digits=False):
  return registry.load('femnist_leaf', data_dir=None if data_dir is None else str(data_dir),
                       cache_dir=str(cache_dir), partition='natural', num_clients=0,
                       partition_params={}, seed=0, only_digits=only_digits)


def _client_arrays(data, client_id):
  elements = list(data.train.create_tf_dataset_for_client(client_id))
  return (np.stack([e['x'].numpy() for e in elements]),
          np.array([int(e['y']) for e in elements]))


def test_writers_with_train_data_become_clients(tmp_path):
  train, test = _leaf_dir(tmp_path / 'leaf')
  data = _load(tmp_path / 'leaf', tmp_path / 'cache')
  assert data.train.client_ids == ['w1', 'w2', 'w3']
  assert data.num_classes == 62
  for writer, user in train.items():
    x, y = _client_arrays(data, writer)
    want_x, want_y = _images(user)
    np.testing.assert_array_equal(y, want_y)
    np.testing.assert_array_equal(x, want_x)
    np.testing.assert_allclose(x.reshape(len(y), -1), np.asarray(user['x']), atol=1e-6)
  # Test set: the test examples of kept writers (w1, w3) in writer order; w9 has no train data.
  want = [_images(test['w1']), _images(test['w3'])]
  np.testing.assert_array_equal(data.test_x, np.concatenate([w[0] for w in want]))
  np.testing.assert_array_equal(data.test_y, [7, 40, 33])


def test_only_digits_keeps_digit_labels_and_drops_emptied_writers(tmp_path):
  train, _ = _leaf_dir(tmp_path / 'leaf')
  data = _load(tmp_path / 'leaf', tmp_path / 'cache', only_digits=True)
  assert data.train.client_ids == ['w1', 'w2']  # w3 wrote only letters.
  x, y = _client_arrays(data, 'w2')
  want_x, want_y = _images(train['w2'], keep=lambda y: y < 10)
  np.testing.assert_array_equal(y, [0, 5])
  np.testing.assert_array_equal(x, want_x)
  np.testing.assert_array_equal(data.test_y, [7])  # w1's digit; w3 dropped, w9 never kept.
  assert data.num_classes == 10


def test_reload_reuses_cache_and_only_digits_gets_its_own(tmp_path):
  _leaf_dir(tmp_path / 'leaf')
  _load(tmp_path / 'leaf', tmp_path / 'cache')
  _load(tmp_path / 'leaf', tmp_path / 'cache')
  assert len(os.listdir(tmp_path / 'cache')) == 1
  _load(tmp_path / 'leaf', tmp_path / 'cache', only_digits=True)
  assert len(os.listdir(tmp_path / 'cache')) == 2


def test_data_dir_is_required(tmp_path):
  with pytest.raises(base.DataError, match='--data_dir'):
    _load(None, tmp_path)


@pytest.mark.parametrize('damage, message', [
    ('no_train_dir', 'train'),
    ('no_json', 'no \\*.json'),
    ('truncated_json', 'a_train_1.json'),
    ('short_pixels', 'a_train_1.json'),
    ('label_out_of_range', 'a_train_1.json'),
    ('num_samples_mismatch', 'a_train_1.json'),
    ('duplicate_writer', 'a_train_1.json.*a_train_0.json'),
])
def test_bad_leaf_data_names_the_file_or_flag(tmp_path, damage, message):
  train, _ = _leaf_dir(tmp_path / 'leaf')
  bad = tmp_path / 'leaf' / 'train' / 'a_train_1.json'
  blob = json.loads(bad.read_text())
  if damage == 'no_train_dir':
    for path in glob.glob(str(tmp_path / 'leaf' / 'train' / '*')):
      os.remove(path)
    os.rmdir(tmp_path / 'leaf' / 'train')
  elif damage == 'no_json':
    for path in glob.glob(str(tmp_path / 'leaf' / 'train' / '*')):
      os.rename(path, path + '.bak')
  elif damage == 'truncated_json':
    bad.write_text(bad.read_text()[:100])
  elif damage == 'short_pixels':
    blob['user_data']['w3']['x'][0] = blob['user_data']['w3']['x'][0][:700]
    bad.write_text(json.dumps(blob))
  elif damage == 'label_out_of_range':
    blob['user_data']['w3']['y'][0] = 62
    bad.write_text(json.dumps(blob))
  elif damage == 'num_samples_mismatch':
    blob['num_samples'] = [5]
    bad.write_text(json.dumps(blob))
  else:
    _write(bad, {'w3': train['w3'], 'w1': train['w1']})
  with pytest.raises(base.DataError, match=message):
    _load(tmp_path / 'leaf', tmp_path / 'cache')


@pytest.mark.skipif(not os.path.isdir(SHARED_LEAF), reason='shared LEAF sample not present')
def test_real_leaf_file_parses_with_pixels_on_the_uint8_grid():
  path = sorted(glob.glob(os.path.join(SHARED_LEAF, 'train', '*.json')))[0]
  writers = femnist_leaf._read_file(path)
  assert len(writers) >= 1
  x, y = next(iter(writers.values()))
  assert x.shape[1] == 784 and len(y) == len(x)
  np.testing.assert_allclose(x * 255, np.round(x * 255), atol=1e-6)  # Stored exactly as uint8.
  assert x.mean() > 0.5  # LEAF's polarity: background is 1.0.
