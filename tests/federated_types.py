"""What crosses from the clients to the server in a TFF computation (from its building block)."""

import tensorflow_federated as tff


def _clients_members(type_):
  if isinstance(type_, tff.FederatedType):
    return [type_.member] if type_.placement == tff.CLIENTS else []
  if isinstance(type_, tff.StructType):
    return [m for child in type_.children() for m in _clients_members(child)]
  return []


def client_to_server(computation) -> list:
  """(intrinsic uri, CLIENTS-placed member type) for every argument of every intrinsic whose
  result is placed at SERVER (sums, means, aggregates...), anywhere in `computation`."""
  found = []

  def walk(block):
    if isinstance(block, tff.framework.Intrinsic):
      signature = block.type_signature
      result = getattr(signature, 'result', None)
      if isinstance(result, tff.FederatedType) and result.placement == tff.SERVER:
        found.extend((block.uri, m) for m in _clients_members(signature.parameter))
    for child in block.children():
      walk(child)

  walk(computation.to_building_block())
  return found


def tensors(type_) -> list:
  """The tensor types of a (possibly nested) type."""
  if isinstance(type_, tff.TensorType):
    return [type_]
  return [t for child in type_.children() for t in tensors(child)]
