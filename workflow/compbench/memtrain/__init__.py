"""Memory-efficient training line (Q-GaLore): AdamW, LoRA, GaLore, Q-GaLore and its
ablations on one recipe.

``methods`` holds the registry :data:`~compbench.memtrain.methods.VARIANTS` and the
shared set-up; one module per training variant; ``grid`` / ``check`` / ``plots`` as
in every line. This file stays empty so that the torch-free ``grid`` imports nothing heavy.
"""
