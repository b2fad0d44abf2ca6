"""Rule tokenizer: train a byte-level BPE tokenizer on the corpus train split."""

from compbench import corpus, runlog, tokenizer

with runlog.to_file(snakemake.log[0]) as log:
    docs = []
    for path in snakemake.input.train:
        docs += corpus.documents(open(path).read())
    tok = tokenizer.train(docs, vocab_size=snakemake.params.vocab_size)
    log.info("trained tokenizer: %d tokens from %d documents", len(tok), len(docs))
    tokenizer.save(tok, snakemake.output[0])
