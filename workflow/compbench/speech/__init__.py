"""Speech line: Conformer-CTC ASR trained dense, low-rank from scratch (LR-SMS),
with dynamic data pruning (DDP-ASR) or with a sparse-regularised mask (MSRS).

Modules: ``corpora`` (ASR corpora registry, espeak-ng synthesis, WAV I/O),
``features`` (log-mel, SpecAugment), ``model`` (subsampling + torchaudio Conformer
+ CTC head), ``lowrank`` (LR-SMS), ``ddp`` (DDP-ASR selection), ``msrs`` (MSRS
masks), ``wer`` (edit distances), ``train`` (the shared recipe), ``grid`` (run
names from the config; torch-free, used by the rules at DAG-build time).
"""
