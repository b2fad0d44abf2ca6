"""Rule perplexity: the variants of one batch on one data set, one tidy row per (variant, metric),
and each variant's per-window NLL sums and token counts (compbench.perplexity_batch.evaluate_batch;
unchanged variants come from the result cache)."""

import pandas as pd

from compbench import device as dev
from compbench import perplexity_batch, runlog
from compbench.artifacts import write_table
from compbench.perplexity import WINDOW_COLUMNS
from compbench.resultcache import ResultCache

with runlog.to_file(snakemake.log[0]) as log:
    dev.set_threads(snakemake.threads)
    p, w = snakemake.params, snakemake.wildcards
    rows, windows = perplexity_batch.evaluate_batch(
        w.model,
        p.variants,
        w.dataset,
        p.spec,
        p.evaluation,
        p.sources,
        p.corpus_dir,
        dev.pick(p.device),
        cache=ResultCache(p.cache),
        text_files=snakemake.input.corpus,
        code_files=[*snakemake.input.code, __file__],
        log=log,
    )
    write_table(snakemake.output.table, pd.DataFrame(rows))
    write_table(snakemake.output.windows, pd.DataFrame(windows, columns=WINDOW_COLUMNS))
