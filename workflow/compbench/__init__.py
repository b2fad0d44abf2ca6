"""compbench: the shared package behind the compbench Snakemake workflow.

Every compute step of the workflow is a thin script in ``workflow/scripts`` that
calls into this package; all logic lives here so it can be unit-tested without
Snakemake. One module per concept (``corpus``, ``tokenizer``, ``pretrain``,
``perplexity``, ...), and methods are registered under their config names in a
:class:`compbench.registry.Registry`.
"""

__version__ = "0.1.0"
