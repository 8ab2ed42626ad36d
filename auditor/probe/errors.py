"""The probe's one expected failure, apart from the modules that raise it: building the model
(build.py) and reading what it returns (batch.py) both end a probe with exit 2 and a message."""


class BuildError(Exception):
    """The model could not be built from what was given (exit 2 with this message)."""
