"""Rule compose_first: one intervention applied to the unchanged model, once per model.
Every run whose order starts with it (the intervention alone, and the order of each pair
that begins with it) reads the result instead of applying it again. Stored: the tensors
it changed (safetensors) and its info (bits, steps, wall seconds) as metadata."""

import copy
import json

from compbench import device as dev
from compbench import provenance, runlog
from compbench.artifacts import save_tensors
from compbench.compose import pipeline as compose

with runlog.to_file(snakemake.log[0]) as log:
    dev.set_threads(snakemake.threads)
    device = dev.pick(snakemake.params.device)
    w, p = snakemake.wildcards, snakemake.params
    steps = compose.sequence_steps(w.step, p.interventions)  # fails fast on an unknown id
    if len(steps) != 1:
        raise ValueError(f"compose_first applies one intervention, not {w.step!r}")
    i = snakemake.input
    base, ctx = compose.load_study(i.model, i.data, i.calibration, i.get("memit_stats"), device, p.seed, log.info)
    model = copy.deepcopy(base)
    with provenance.measure(device) as run:
        (info,) = compose.apply(model, ctx, steps)
    wall = run.record()["wall_s"]
    changed = compose.changed_tensors(model, base)
    log.info("%s: %d of %d tensors changed, %.1f s", w.step, len(changed), len(base.state_dict()), wall)
    save_tensors(snakemake.output[0], changed, {"info": json.dumps(info, default=str), "wall_s": wall})
