# Figures for the report (snakemake --report results/report.html).
from compbench import verdicts


rule figure_pretrain:
    output:
        report(
            f"{RESULTS}/figures/pretrain-{{model}}.png",
            caption="../workflow/report/pretrain.rst",
            category="Pretraining",
        ),
    input:
        curve=f"{RESULTS}/pretrain/{{model}}/curve.csv",
        code=code("figure_pretrain"),
    log:
        f"{RESULTS}/logs/figures/pretrain-{{model}}.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../workflow/scripts/figure_pretrain.py"


rule figure_perplexity:
    output:
        report(
            f"{RESULTS}/figures/perplexity.png",
            caption="../workflow/report/perplexity.rst",
            category="Evaluation",
        ),
    input:
        table=f"{RESULTS}/tables/perplexity.csv",
        code=code("figure_perplexity"),
    log:
        f"{RESULTS}/logs/figures/perplexity.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../workflow/scripts/figure_perplexity.py"


# The front page: every paper claim of the active lines with the paper's anchor,
# this run's numbers and the verdict, computed from the result tables
# (compbench.verdicts, each line's claims.py); workflow/report/workflow.rst
# includes the page this rule writes. The names of the config files reach the job
# through the environment (COMPBENCH_CONFIGFILES, set in common.smk), not params:
# naming the files differently must not rerun anything (tests/workflow/test_reliability.py).
rule verdicts:
    output:
        table=report(f"{RESULTS}/tables/verdicts.csv", caption="../workflow/report/verdicts.rst", category="Verdicts"),
        page=f"{RESULTS}/report/front.rst",
    input:
        tables=lambda wc: verdicts.inputs(config),
        code=code("verdicts", extra=[f"compbench.{line.package}.claims" for line in lines.active(config)]),
    params:
        claims=lambda wc: [[c.id, c.statement, c.anchor, c.source, c.link] for c in verdicts.collect(config)],
        models=cfg("models"),
        tiny=cfg("tiny_model"),
    log:
        f"{RESULTS}/logs/verdicts.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../workflow/scripts/verdicts.py"


# A sortable HTML view of every result table (Snakemake's report shows HTML
# inline but offers a CSV only as a download), under the CSV's own category and
# caption (read from the report(...) flag of the rule that writes the CSV).
rule table_html:
    output:
        report(
            f"{RESULTS}/tables/{{table}}.html",
            caption="../workflow/report/table_html.rst",
            category=lambda wc: verdicts.report_flag(workflow.rules, f"{RESULTS}/tables/{wc.table}.csv").category,
        ),
    input:
        table=f"{RESULTS}/tables/{{table}}.csv",
        code=code("table_html"),
    params:
        caption=lambda wc: verdicts.caption_text(workflow.rules, f"{RESULTS}/tables/{wc.table}.csv", config),
    wildcard_constraints:
        table=r"[^/]+",
    log:
        f"{RESULTS}/logs/table_html/{{table}}.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../workflow/scripts/table_html.py"
