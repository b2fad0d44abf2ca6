"""Rule verdicts: the papers' claims decided on this run's result tables
(compbench.verdicts), as a table and as the report's generated front page."""

import datetime
import os

import pandas as pd

from compbench import runlog, verdicts
from compbench.artifacts import read_table, write_table, write_text

with runlog.to_file(snakemake.log[0]) as log:
    claims = verdicts.collect(snakemake.config)
    tables = {}

    def read(path):
        if path not in tables:
            tables[path] = read_table(path)
        return tables[path]

    rows = verdicts.evaluate(claims, read)
    devices = {str(d) for t in tables.values() if "device" in t.columns for d in t["device"].dropna().unique()}
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC") + " (when the verdicts were computed)"
    meta = verdicts.run_meta(
        os.environ.get("COMPBENCH_CONFIGFILES", "config/config.yaml").split(os.pathsep),
        snakemake.params.models,
        snakemake.params.tiny,
        devices,
        date,
    )
    page = verdicts.front_page(rows, meta)
    links = sorted({r["link"].rsplit("/", 1)[-1] for r in rows})
    problems = verdicts.rst_problems(page + verdicts.report_links([], links))
    if problems:
        raise ValueError("the front page is not clean reStructuredText:\n" + "\n".join(problems))
    for r in rows:
        log.info("%-45s %-18s %s", r["id"], r["verdict"], r["this_run"])
    write_table(snakemake.output.table, pd.DataFrame(rows))
    write_text(snakemake.output.page, page)
