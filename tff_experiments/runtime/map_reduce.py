"""A learning process's round compiled to TFF's MapReduce form: one client call, one aggregation.

TFF's native compiler keeps every layer's `federated_map` and every aggregation's
`federated_aggregate` as a call of its own, and TFF's C++ executor pays for each call, for
each client (a thread, a TF session run): the MNIST 2NN's FedAvg round made 16 calls per
client (10 maps, 6 aggregations). `tff.backends.mapreduce` rewrites a round of the shape
broadcast -> client work -> aggregations -> server update into `work`, one TF computation per
client holding the client update and every layer's client-side math, and one
`federated_aggregate` whose functions hold every aggregation's. The TF ops are the same, so are
the results (tests compare the weights and metrics of both forms). A round the form cannot
express (e.g. with secure-sum intrinsics, or two broadcasts) keeps TFF's own compilation.
"""

from typing import Optional

from absl import logging
import tensorflow as tf
import tensorflow_federated as tff


def _without_grappler() -> tf.compat.v1.ConfigProto:
  """Grappler off while forming the round: the execution context's compiler optimizes the
  form's TF computations afterwards anyway (forming: 1.1 -> 0.6 s on the MNIST 2NN)."""
  config = tf.compat.v1.ConfigProto()
  config.graph_options.rewrite_options.disable_meta_optimizer = True
  return config


def _round_of(form: tff.backends.mapreduce.MapReduceForm,
              next_type: tff.FunctionType) -> tff.Computation:
  """`(state, client data) -> LearningProcessOutput` of a form without secure sums, with
  the result type of `next_type` (the original round's: its Python containers, e.g.
  ModelWeights, come back).

  TFF's `get_computation_for_map_reduce_form` also calls the secure-sum intrinsics on their
  empty structures, which TFF's C++ executor cannot run.
  """
  state_type, data_type = form.type_signature.parameter

  @tff.federated_computation(state_type, data_type)
  def next_fn(state, data):
    model = tff.federated_broadcast(tff.federated_map(form.prepare, state))
    client_outputs = tff.federated_map(form.work, tff.federated_zip([data, model]))
    aggregated = tff.federated_aggregate(client_outputs[0], form.zero(), form.accumulate,
                                         form.merge, form.report)
    no_secure_sum = tff.federated_value((), tff.SERVER)
    update_arg = (state, (aggregated, no_secure_sum, no_secure_sum, no_secure_sum))
    state, metrics = tff.federated_map(form.update, tff.federated_zip(update_arg))
    return tff.learning.templates.LearningProcessOutput(state, metrics)

  return tff.framework.ConcreteComputation.with_type(
      next_fn, tff.FunctionType(next_fn.type_signature.parameter, next_type.result))


def _has_secure_sums(form: tff.backends.mapreduce.MapReduceForm) -> bool:
  secure = (form.secure_sum_bitwidth, form.secure_sum_max_input, form.secure_modular_sum_modulus)
  return any(not tff.types.StructType([]).is_assignable_from(c.type_signature.result)
             for c in secure)


def compile_round(next_fn: tff.Computation) -> Optional[tff.Computation]:
  """`next_fn` in MapReduce form (the same argument and result types, the same results), or
  None (logged) when the form cannot express it."""
  try:
    form = tff.backends.mapreduce.get_map_reduce_form_for_computation(
        next_fn, grappler_config=_without_grappler())
  except Exception as e:  # pylint: disable=broad-except  # TFF raises several kinds.
    logging.info('The round stays in TFF native form (no MapReduce form: %s)', e)
    return None
  if _has_secure_sums(form):
    logging.info('The round stays in TFF native form (it has secure-sum intrinsics)')
    return None
  return _round_of(form, next_fn.type_signature)


def compiled(process: tff.learning.templates.LearningProcess
             ) -> tff.learning.templates.LearningProcess:
  """`process` with its `next` in MapReduce form when the form can express it."""
  next_fn = compile_round(process.next)
  if next_fn is None:
    return process
  return tff.learning.templates.LearningProcess(
      process.initialize, next_fn, process.get_model_weights, process.set_model_weights,
      get_hparams_fn=process.get_hparams, set_hparams_fn=process.set_hparams)
