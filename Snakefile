# compbench: a Snakemake workflow reproducing a benchmark of model-efficiency
# methods. Architecture: docs/architecture.md.
import os
import re
import sys
from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")

# The package lives in workflow/compbench. Put this checkout's copy first on the
# path of Snakemake and of every script job, so a worktree or a bare checkout
# runs its own code even where another copy is pip-installed.
PKG_ROOT = os.path.join(workflow.basedir, "workflow")
sys.path.insert(0, PKG_ROOT)
os.environ["PYTHONPATH"] = os.pathsep.join([PKG_ROOT] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
from compbench.config import ConfigError, prepare as prepare_config
from compbench import allocator as _allocator

# Every job's malloc keeps its freed pages instead of unmapping and refaulting them each
# step (compbench.allocator: a fifth of a training step's CPU time on this 2-core CPU).
# COMPBENCH_MALLOC=system leaves it alone.
try:
    _allocator.job_environment()
except ValueError as _e:
    sys.exit(f"compbench: {_e}")

# The embedded default, unless configs are given with --configfile: each of those
# is a complete config (config/smoke.yaml, config/paper_*.yaml) and replaces the
# default instead of being merged into it key by key (which would, say, add the
# tiny model to a paper run). `--config key=value` still overrides either.
CONFIG_FILES = list(workflow.overwrite_configfiles) or [os.path.join(workflow.basedir, "config", "config.yaml")]
if not workflow.overwrite_configfiles:
    configfile: CONFIG_FILES[0]

# Before any job: every config file read again with duplicate keys refused, the
# schema with its defaults filled in, then the cross-field checks
# (compbench.config.prepare). A bad config ends here with one message naming the
# key, the bad value and what is allowed: no traceback, no job, nothing touched.
try:
    prepare_config(config, os.path.join(workflow.basedir, "config", "schema.yaml"), CONFIG_FILES)
except ConfigError as _e:
    sys.exit(f"compbench: bad config: {_e}")

# Warm start (compbench.warmstart): a local run imports torch and transformers once, in a
# server that forks each script job, instead of once per job (~4 s of CPU each).
# COMPBENCH_WARM_START=0 turns it off; a dry run or a cluster run never starts it.
from compbench import warmstart as _warmstart
_warm = {}

onstart:
    _warm["server"] = _warmstart.start_for(workflow)

onsuccess:
    _warmstart.stop(_warm.pop("server", None))

onerror:
    _warmstart.stop(_warm.pop("server", None))

# {model} is always one of the config's models: without this, a rule whose output
# has {model} in a longer path (fusion's results/vision/fusion/{model}/...) is tried
# for other files too, and Snakemake builds (and discards) chains of exceptions.
wildcard_constraints:
    model="|".join(re.escape(m) for m in config.get("models", {})) or "(?!x)x",

# The config files of this run, for the report's front page (rule verdicts): jobs
# inherit the environment, and an environment value is no rerun trigger.
os.environ["COMPBENCH_CONFIGFILES"] = os.pathsep.join(
    [os.path.relpath(f) if os.path.isabs(f) else str(f) for f in workflow.configfiles] or ["config/config.yaml"]
)

# The front page includes the verdict table that rule verdicts writes; a report of
# selected targets, built before that table exists, gets the page without it.
report: "workflow/report/workflow.rst" if os.path.exists("results/report/front.rst") else "workflow/report/workflow-no-verdicts.rst"

# Shared helpers first, then the core stages and one file per research line
# (named like its package, compbench/<line>/). Which jobs a config asks for is
# computed by the package (compbench.lines and each line's grid.py), so the order
# of the includes does not matter.
include: "rules/common.smk"
for _smk in sorted(Path(workflow.basedir, "rules").glob("*.smk")):
    if _smk.name != "common.smk":
        include: str(_smk)
apply_slurm_placement()  # rules/common.smk: sbatch partition/account/GPU model from config


rule all:
    default_target: True
    input:
        lambda wc: lines.targets(config),
