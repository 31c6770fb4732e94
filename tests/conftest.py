"""Hypothesis profiles. `.ci/run` sets HYPOTHESIS_PROFILE=ci: the same examples on every
CI run (derandomised, no example database), so what lands was tested as CI tests it and
a landing is never blocked by a new random draw. Anywhere else (`make test` by hand) the
search is random, and keeps what it finds in .hypothesis/: that is where the property
tests find new cases (two order-independence bugs, on 2026-12-02)."""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
