"""Server optimizer hyperparameters: Reddi et al. defaults, active only where they are read."""

import numpy as np
import tensorflow as tf

from tff_experiments import settings
from tff_experiments.algorithms import server_optimizers
from tff_experiments.core import config


def test_adam_first_step_matches_the_hand_computed_update_with_the_flag_values():
  server = settings.from_flat({'server_optimizer': 'adam', 'server_learning_rate': 0.5,
                               'server_beta_2': 0.9, 'server_epsilon': 0.01}).server
  optimizer = server_optimizers.build(server)
  weights, gradient = (tf.constant([1.0, 2.0]),), (tf.constant([1.0, -2.0]),)
  _, (updated,) = optimizer.next(optimizer.initialize(
      (tf.TensorSpec([2], tf.float32),)), weights, gradient)
  g = np.array([1.0, -2.0])
  m, v = 0.1 * g, 0.1 * g**2                 # (1 - beta_1) g, (1 - beta_2) g^2 at step 1.
  lr = 0.5 * np.sqrt(1 - 0.9) / (1 - 0.9)    # Bias-corrected step size.
  np.testing.assert_allclose(updated, np.array([1.0, 2.0]) - lr * m / (np.sqrt(v) + 0.01),
                             rtol=1e-5)


def test_hyperparameters_are_active_only_for_the_optimizers_that_read_them():
  active = lambda name: set(config.active_flat(settings.from_flat({'server_optimizer': name})))
  hyper = {'server_momentum', 'server_beta_1', 'server_beta_2', 'server_epsilon'}
  assert active('sgd') & hyper == set()
  assert active('sgdm') & hyper == {'server_momentum'}
  assert active('adam') & hyper == {'server_beta_1', 'server_beta_2', 'server_epsilon'}
  assert active('yogi') & hyper == {'server_beta_1', 'server_beta_2', 'server_epsilon'}
  assert active('adagrad') & hyper == {'server_epsilon'}
  defaults = settings.from_flat({'server_optimizer': 'adam'}).server
  assert (defaults.beta_1, defaults.beta_2, defaults.epsilon) == (0.9, 0.99, 1e-3)
