"""Errors a user can act on. The CLI prints `Error: <message>` on stderr and exits with `exit_code`.

Anything that is not a ForecastError is a bug and keeps its traceback.
"""


class ForecastError(Exception):
    """Base class: a problem the user can fix, reported as one line."""

    exit_code = 1


class DataError(ForecastError):
    """The input data is unusable: the message names the file, the column and the line. Exit 2."""

    exit_code = 2


class ConfigError(ForecastError):
    """An option or combination of options is invalid. Exit 2."""

    exit_code = 2


class ArtifactError(ForecastError):
    """A model directory is missing, corrupt or from an incompatible version. Exit 1."""

    exit_code = 1


class TrainingError(ForecastError):
    """Training failed while working (for example the loss became NaN); nothing was saved. Exit 1."""

    exit_code = 1


class OutputError(ForecastError):
    """A result could not be written (full or read-only filesystem, a missing directory, closed stdout); what
    was there before is intact. Exit 1."""

    exit_code = 1
