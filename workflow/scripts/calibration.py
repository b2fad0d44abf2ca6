"""Rule calibration: a calibration token set (safetensors ids + manifest in metadata)."""
from compbench import calibration, runlog, tokenizer
from compbench.artifacts import save_tensors

with runlog.to_file(snakemake.log[0]) as log:
    w = snakemake.wildcards
    tok = tokenizer.load(snakemake.input.model)
    ids = calibration.token_set(
        w.source, tok, int(w.n), int(w.seqlen), int(w.seed),
        corpus_dir=snakemake.params.corpus_dir, sources=snakemake.params.sources,
    )
    log.info("calibration set %s: %s tokens", w, tuple(ids.shape))
    save_tensors(snakemake.output[0], {"ids": ids}, {"source": w.source, "n_samples": w.n, "seq_len": ids.shape[1], "seed": w.seed})
