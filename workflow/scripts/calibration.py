"""Rule calibration: a calibration token set (safetensors ids + manifest in metadata).
The `source` wildcard is a source (`tiny`: random windows) or `<source>-<format>`
for a downstream source (`arith-cot`); see compbench.calibration_data."""

from compbench import calibration_data, runlog, tokenizer
from compbench.artifacts import save_tensors
from compbench.calibration_catalogue import parse_name

with runlog.to_file(snakemake.log[0]) as log:
    w = snakemake.wildcards
    source, fmt = parse_name(w.source)
    tok = tokenizer.load(snakemake.input.model)
    ids = calibration_data.token_set(
        source,
        tok,
        int(w.n),
        int(w.seqlen),
        int(w.seed),
        fmt=fmt,
        corpus_dir=snakemake.params.corpus_dir,
        sources=snakemake.params.sources,
        tasks=snakemake.params.tasks,
    )
    log.info("calibration set %s: %s tokens", w, tuple(ids.shape))
    save_tensors(
        snakemake.output[0], {"ids": ids}, {"source": source, "format": fmt, "n_samples": w.n, "seq_len": ids.shape[1], "seed": w.seed}
    )
