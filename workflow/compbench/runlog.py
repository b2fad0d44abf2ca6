"""Send a job's logging and progress bars (stderr) to the rule's log file."""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path


@contextlib.contextmanager
def to_file(path: str | None):
    if not path:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
        yield logging.getLogger("compbench")
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", buffering=1) as fh:
        handler = logging.StreamHandler(fh)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        old_err = sys.stderr
        sys.stderr = fh  # tqdm writes here
        try:
            yield logging.getLogger("compbench")
        except BaseException:
            logging.getLogger("compbench").exception("job failed")
            raise
        finally:
            sys.stderr = old_err
            root.removeHandler(handler)
