"""Federated datasets: loaders, client partitions and file-backed client data.

Entry point: `registry.load(name, ...)` returns a `base.FederatedData`.
"""
