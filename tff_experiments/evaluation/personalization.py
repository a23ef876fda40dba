"""Personalization: how much fine-tuning on a client's own data improves the global model there.

With `--personalization_epochs` > 0 every client holds out a seeded fraction of its examples
(`clients.holdout`; federated training sees only the rest). At each evaluation round a fixed
choice of `--personalization_clients` clients (drawn once from `--seed`, so the curves compare)
each evaluates the global model on its held-out part (before), fine-tunes it with `local_sgd`
on its training part (the personalization epochs, batch size and learning rate; the client
momentum), and evaluates again (after): one TFF computation mapped over those clients. The
driver reports the mean and the 10th percentile over clients of both accuracies. Nothing
carries over between evaluations, so a resumed run recomputes exactly the same values.
"""

import collections
import math
from typing import Any, Callable, Optional, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_federated as tff

from tff_experiments.clients import batch_stats
from tff_experiments.clients import client_data
from tff_experiments.clients import holdout
from tff_experiments.clients import local_update
from tff_experiments.core import seeds
from tff_experiments.models import model as model_lib

# Batch size of the held-out evaluation (it changes no result, only memory and speed).
_EVAL_BATCH = 1000
PERCENTILE = 10


def holdout_fraction(config) -> float:
  """The share of each client held out from training: 0 unless personalization is on."""
  settings = config.personalization
  return settings.holdout_fraction if settings.epochs > 0 else 0.0


def choose_clients(client_ids: Sequence[str], *, seed: int, count: int) -> list[str]:
  """`count` distinct clients (at most all of them) drawn from `seed`, in `client_ids` order."""
  ids = list(client_ids)
  rng = seeds.generator(seed, purpose='personalization_clients')
  return [ids[i] for i in sorted(rng.choice(len(ids), min(count, len(ids)), replace=False))]


def tasks(client_ids: Sequence[str], *, seed: int, split_seed: int,
          learning_rate: float) -> list:
  """The chosen clients' `client_data` tasks: a fine-tuning shuffle fixed per client for the
  run, the fine-tuning learning rate, and the client's held-out seed (its update seed, per
  client too, seeds nothing: fine-tuned weights are not aggregated)."""
  return [client_data.task(c, shuffle_seed=seeds.derive(seed, purpose='personalization',
                                                          client=c),
                           update_seed=seeds.derive(seed, purpose='personalization_update',
                                                    client=c),
                           learning_rate=learning_rate,
                           holdout_seed=holdout.client_seed(split_seed, c))
          for c in client_ids]


def _held_out_stats(model: model_lib.Model, weights, batches: tf.data.Dataset):
  """`batch_stats` sums of the model at `weights` over `batches` (on a Keras instance of its
  own, so no other evaluation's or training's variables are shared)."""
  keras_model = model.keras()
  loss_fn = model_lib.loss_fn()
  variables = (keras_model.trainable_variables, keras_model.non_trainable_variables)

  @tf.function
  def evaluate():
    for variable, value in zip(tf.nest.flatten(variables), tf.nest.flatten(weights)):
      variable.assign(value)

    def accumulate(stats, batch):
      logits = keras_model(batch['x'], training=False)
      return batch_stats.accumulate(stats, labels=batch['y'], logits=logits,
                                    mean_loss=loss_fn(batch['y'], logits))

    return batches.reduce(batch_stats.zeros(), accumulate)

  return evaluate()


def build_computation(model: model_lib.Model,
                      train_data: tff.simulation.datasets.ClientData, *, epochs: int,
                      batch_size: int, learning_rate: float, momentum: float,
                      fraction: float) -> tff.Computation:
  """`personalize(weights@SERVER, tasks@CLIENTS) -> {before, after}@CLIENTS`, each the
  `batch_stats.means` of the client's held-out part before and after fine-tuning."""
  split = client_data.build_split_computation(
      train_data, epochs=epochs, batch_size=batch_size, holdout_fraction=fraction,
      eval_batch_size=_EVAL_BATCH)
  update_fn = local_update.local_sgd(model, learning_rate=learning_rate, momentum=momentum)
  weights_type = model.weights_type()

  @tff.tensorflow.computation(weights_type, split.type_signature.result)
  def fine_tune(weights, data):
    before = _held_out_stats(model, weights, data['held_out'])
    delta, _, _ = update_fn(weights, data['train'])  # initial - final (0 if not finite).
    tuned = tff.learning.models.ModelWeights(
        tuple(w - d for w, d in zip(weights.trainable, delta)), weights.non_trainable)
    after = _held_out_stats(model, tuned, data['held_out'])
    return collections.OrderedDict(before=batch_stats.means(before),
                                   after=batch_stats.means(after))

  @tff.federated_computation(tff.FederatedType(weights_type, tff.SERVER),
                             tff.FederatedType(client_data.TASK_TYPE, tff.CLIENTS))
  def personalize(weights, client_tasks):
    return tff.federated_map(fine_tune, (tff.federated_broadcast(weights),
                                         tff.federated_map(split, client_tasks)))

  return personalize


def summarize(results: Sequence[Any]) -> dict[str, float]:
  """`personalization/{before,after}_accuracy_{mean,p10}` over the clients with held-out
  examples (NaN if none has any); p10 is numpy's 10th percentile (linear interpolation)."""
  kept = [r for r in results if int(r['before']['num_examples']) > 0]
  columns = {}
  for when in ('before', 'after'):
    accuracies = np.array([float(r[when]['accuracy']) for r in kept])
    columns[f'personalization/{when}_accuracy_mean'] = (
        float(np.mean(accuracies)) if kept else math.nan)
    columns[f'personalization/{when}_accuracy_p10'] = (
        float(np.percentile(accuracies, PERCENTILE)) if kept else math.nan)
  return columns


def build_evaluator(config, model: model_lib.Model, data
                    ) -> Optional[Callable[[tff.learning.models.ModelWeights], dict]]:
  """`evaluate(weights) -> personalization columns` for the run, or None when it is off."""
  if holdout_fraction(config) == 0:
    return None
  settings = config.personalization
  personalize = build_computation(
      model, data.train, epochs=settings.epochs, batch_size=settings.batch_size,
      learning_rate=settings.learning_rate, momentum=config.client.momentum,
      fraction=settings.holdout_fraction)
  chosen = choose_clients(data.train.client_ids, seed=config.run.seed, count=settings.clients)
  client_tasks = tasks(chosen, seed=config.run.seed, split_seed=config.data.split_seed,
                       learning_rate=settings.learning_rate)
  return lambda weights: summarize(personalize(weights, client_tasks))
