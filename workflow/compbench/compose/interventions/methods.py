"""The interventions of the composability study (one import line each).

Every method registers itself in :data:`compbench.compose.interventions.registry.INTERVENTIONS`
when its module is imported; importing this module loads them all.
"""

from __future__ import annotations

from compbench.compose.interventions import (  # noqa: F401
    awq,  # noqa: F401
    edit_ft,  # noqa: F401
    edit_lora,  # noqa: F401
    edit_memit,  # noqa: F401
    ga,
    gd,
    gptq,  # noqa: F401
    pruning,  # noqa: F401
    rmu,  # noqa: F401
)
from compbench.compose.interventions.registry import (  # noqa: F401
    CATEGORIES,
    INTERVENTIONS,
    MCQ,
    Context,
    EditRequest,
    Intervention,
    Probe,
    StudyData,
    register,
)
