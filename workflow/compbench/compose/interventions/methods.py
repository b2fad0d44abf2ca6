"""The interventions of the composability study (one import line each).

Every method registers itself in :data:`compbench.compose.interventions.registry.INTERVENTIONS`
when its module is imported; importing this module loads them all.
"""

from __future__ import annotations

from compbench.compose.interventions import awq  # noqa: F401
from compbench.compose.interventions import edit_ft  # noqa: F401
from compbench.compose.interventions import edit_lora  # noqa: F401
from compbench.compose.interventions import edit_memit  # noqa: F401
from compbench.compose.interventions import ga, gd  # noqa: F401
from compbench.compose.interventions import gptq  # noqa: F401
from compbench.compose.interventions import pruning  # noqa: F401
from compbench.compose.interventions import rmu  # noqa: F401
from compbench.compose.interventions.registry import (  # noqa: F401
    CATEGORIES, Context, EditRequest, INTERVENTIONS, Intervention, MCQ, Probe, StudyData, register,
)
