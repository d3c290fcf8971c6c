"""``python -m tunix_rt.tune``: the Tune driver's command line (see ``command.main``)."""

from __future__ import annotations

import os
import sys

# Before Ray is imported: under `uv run` (make demo, make test) Ray would otherwise
# package the working directory and start every worker through `uv run` again. The
# package is installed where trials run (the venv, the trial images); set it to 1 to opt in.
os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")

from tunix_rt.tune.command import main

if __name__ == "__main__":
    sys.exit(main())
