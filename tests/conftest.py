"""Hypothesis profiles: ``ci`` (the default, bounded) and ``long`` (a soak run).

Select one with the environment variable ``HYPOTHESIS_PROFILE``, e.g.
``HYPOTHESIS_PROFILE=long ./dev test tests/e2e/test_random_graphs.py``. Tests that set their own
``max_examples`` keep it; the others (the random-graph fuzzing) take the profile's.
"""

import os

from hypothesis import settings

settings.register_profile("ci", max_examples=40, deadline=None, print_blob=True)
settings.register_profile("long", max_examples=600, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
