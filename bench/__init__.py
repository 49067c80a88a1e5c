"""bookgen's benchmark suite (issue 6): speed-up, overhead, scale, memory, prompt caching.

Run ``python -m bench`` (or ``--quick``); see ``bench/run.py``. Not part of the test suite.
"""
