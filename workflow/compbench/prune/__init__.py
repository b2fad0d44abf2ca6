"""Pruning line (AlphaPruning's experiments): unstructured and N:M pruning of every
decoder linear by magnitude / Wanda / SparseGPT at a per-block sparsity allocation.

``methods`` holds the registry :data:`~compbench.prune.methods.PRUNERS` and the
driver; one module per method (``magnitude``, ``wanda``, ``sparsegpt``); ``masked``
the stored variant; ``grid`` / ``check`` / ``plots`` as in every line. This file
stays empty so that the torch-free ``grid`` imports nothing heavy.
"""
