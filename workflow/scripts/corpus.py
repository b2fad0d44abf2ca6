"""Rule corpus: obtain, clean and split the offline English corpus."""

from pathlib import Path

from compbench import corpus, runlog
from compbench.artifacts import write_json

with runlog.to_file(snakemake.log[0]) as log:
    c = snakemake.params.corpus
    spec = corpus.SplitSpec(validation=c["validation"], test=c["test"], seed=c["seed"])
    out_dir = Path(snakemake.output.stats).parent
    stats = corpus.build(
        c["sources"],
        spec,
        Path(snakemake.params.cache),
        out_dir,
        max_chars=c.get("max_chars"),
        options={"tasks": c.get("tasks", {}), "knowledge": c.get("knowledge", {})},
    )
    log.info("corpus stats: %s", stats)
    write_json(snakemake.output.stats, stats)
