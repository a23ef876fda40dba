"""Aggregation layers with secure sums run on their own: one round of a factory's process with
the protocol's messages bound, as `secagg.rounds.SecureRounds` binds them for a whole round."""

from typing import Any, Callable

import tensorflow_federated as tff

from tff_experiments.secagg import messages


def aggregation_round(build_factory: Callable[[], Any], value_type, weight_type=None) -> tuple:
  """(the process of `build_factory()` built outside any round, for `initialize`; a
  computation (state, values[, weights], client messages, server message) running one round of
  it with the messages bound). A factory is weighted iff `weight_type` is given."""
  types = (value_type,) if weight_type is None else (value_type, weight_type)
  outside = build_factory().create(*types)
  state_type = outside.initialize.type_signature.result
  client_messages_type = tff.FederatedType(messages.CLIENT_TYPE, tff.CLIENTS)
  server_message_type = tff.FederatedType(messages.SERVER_TYPE, tff.SERVER)

  def run(state, values, client_messages, server_message):
    with messages.bind(client_messages, server_message):
      process = build_factory().create(*types)
    return process.next(state, *values)

  if weight_type is None:
    next_fn = tff.federated_computation(
        lambda state, value, client_messages, server_message: run(
            state, (value,), client_messages, server_message),
        state_type, tff.FederatedType(value_type, tff.CLIENTS), client_messages_type,
        server_message_type)
  else:
    next_fn = tff.federated_computation(
        lambda state, value, weight, client_messages, server_message: run(
            state, (value, weight), client_messages, server_message),
        state_type, tff.FederatedType(value_type, tff.CLIENTS),
        tff.FederatedType(weight_type, tff.CLIENTS), client_messages_type, server_message_type)
  return outside, next_fn
