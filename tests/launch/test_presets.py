"""launch/presets/*.flags: each parses with run_experiment's flags, validates, and matches the
McMahan et al. rows of bench.mcmahan."""

import glob
import os

from absl import flags
import pytest

from bench import common
from tff_experiments import flag_binding

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_PRESETS = sorted(glob.glob(os.path.join(_ROOT, 'launch', 'presets', '*.flags')))
# Preset -> (model, partition, E, target), as bench.mcmahan.ROWS runs them.
_MCMAHAN = {
    'mcmahan_2nn_iid': ('mnist_2nn', 'iid', 1, 0.97),
    'mcmahan_2nn_noniid': ('mnist_2nn', 'shards', 1, 0.97),
    'mcmahan_cnn_iid': ('mnist_cnn', 'iid', 5, 0.99),
    'mcmahan_cnn_noniid': ('mnist_cnn', 'shards', 5, 0.99),
}


def _config(preset):
  values = flags.FlagValues()
  flag_binding.define_flags(values)
  values(['run_experiment', f'--flagfile={preset}', '--experiment_name=preset'])
  return flag_binding.config_from_flags(values)


def test_every_mcmahan_row_has_a_preset():
  assert set(_MCMAHAN) <= {os.path.basename(p)[:-len('.flags')] for p in _PRESETS}


@pytest.mark.parametrize('preset', _PRESETS, ids=os.path.basename)
def test_preset_parses_and_validates(preset, monkeypatch):
  monkeypatch.chdir(_ROOT)  # --data_dir in presets is relative to the repository root.
  config = _config(preset)
  name = os.path.basename(preset)[:-len('.flags')]
  if name in _MCMAHAN:
    model, partition, epochs, target = _MCMAHAN[name]
    assert (config.model.model, config.data.partition, config.client.epochs_per_round,
            config.schedule.target_accuracy) == (model, partition, epochs, target)
    assert config.schedule.stop_at_target
    paper = common.MCMAHAN_MNIST
    assert (config.data.dataset, config.data.data_dir, config.data.num_clients,
            config.schedule.clients_per_round, config.client.batch_size,
            config.client.learning_rate, config.server.optimizer,
            config.server.learning_rate) == (
                paper['dataset'], paper['data_dir'], paper['num_clients'],
                paper['clients_per_round'], paper['client_batch_size'],
                paper['client_learning_rate'], paper['server_optimizer'],
                paper['server_learning_rate'])
