"""Errors that reach a user as one clear line."""


class CustodesError(Exception):
    """Base of every error Custodes reports to a user.

    The message is a complete sentence a user can act on; it never holds PHI,
    secrets or tokens.
    """


class ConfigurationError(CustodesError):
    """A setting, file or service the command needs is missing or wrong."""


class InputFormatError(CustodesError):
    """An input file cannot be read at all (not a single line of it is usable)."""


class ServiceUnavailableError(CustodesError):
    """A server Custodes talks to (database, bus) does not answer."""
