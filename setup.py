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
    # `pip install .[ray]`: the Ray sweep backend (launch.sweep --backend=ray). The same pins as
    # requirements-ray.lock (why Ray 2.50.1: see there), which `make test` installs --no-deps.
    extras_require={'ray': [
        'ray==2.50.1', 'click==8.5.1', 'filelock==4.3.2', 'jsonschema==4.26.0',
        'jsonschema-specifications==2025.9.1', 'msgpack==1.2.4', 'referencing==0.37.0',
        'rpds-py==2026.9.1',
    ]},
)
