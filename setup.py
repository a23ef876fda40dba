"""tff-experiments: federated-learning research simulations on TensorFlow Federated."""

import setuptools

setuptools.setup(
    name='tff-experiments',
    version='0.1.0',
    description='TFF research simulations: FedAvg and friends on MNIST/EMNIST client splits.',
    packages=setuptools.find_packages(include=['tff_experiments*', 'datasets*', 'launch*']),
    # TFF 0.87 runs on Python 3.9-3.11 only (its wheels and its jax/jaxlib pins stop there).
    python_requires='>=3.9,<3.12',
    # The exact set lives in requirements.lock and is installed with --no-deps (see README):
    # TFF's own pins cannot be resolved from today's registries.
    install_requires=[],
)
