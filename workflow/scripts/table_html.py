"""Rule table_html: a result table as a sortable HTML page for the report."""

from pathlib import Path

from compbench import htmltable, runlog
from compbench.artifacts import read_table, write_text

with runlog.to_file(snakemake.log[0]):
    write_text(snakemake.output[0], htmltable.to_html(read_table(snakemake.input.table), Path(snakemake.input.table).name))
