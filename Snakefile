# compbench: a Snakemake workflow reproducing a benchmark of model-efficiency
# methods. Architecture: ../shared/DESIGN.md; usage: README.md.
import sys
from pathlib import Path

from snakemake.utils import min_version, validate

min_version("9.0")

# The package lives in workflow/compbench; it is pip-installed (editable) by the
# set-up, and put on the path here too so a bare checkout imports it.
sys.path.insert(0, str(Path(workflow.basedir) / "workflow"))
from compbench.config import check as check_config

configfile: "config/config.yaml"

validate(config, "config/schema.yaml", set_default=True)
check_config(config)

report: "workflow/report/workflow.rst"

include: "rules/common.smk"
include: "rules/corpus.smk"
include: "rules/model.smk"
include: "rules/evaluate.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        final_outputs(),
