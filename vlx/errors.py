"""User-facing errors. Each carries a one-line message that says what is wrong and what to
do; the CLI prints it without a traceback (unless ``--debug``) and exits non-zero."""


class VlxError(Exception):
    """Base of the errors vlx reports to users as one line."""

    exit_code = 2


class InputError(VlxError):
    """A bad input file or image (missing, corrupt, too large, ...)."""


class UsageError(VlxError):
    """A bad option: unknown model, method, target, layer or device."""


class ModelNotAvailable(VlxError):
    """A model that is neither on this machine nor downloadable."""
