"""tff-experiments: federated-learning research simulations on TensorFlow Federated."""
