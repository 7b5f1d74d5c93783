"""The main module pytest-xdist's workers are given (see `tests/conftest.py`); it does nothing."""
