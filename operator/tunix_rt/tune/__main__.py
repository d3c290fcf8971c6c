"""``python -m tunix_rt.tune``: the Tune driver's command line (see ``driver.main``)."""

from __future__ import annotations

import sys

from tunix_rt.tune.driver import main

if __name__ == "__main__":
    sys.exit(main())
