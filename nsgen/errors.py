"""The one exception type that means "the user asked for something impossible"."""


class NsgenError(ValueError):
    """Bad input or impossible option value.

    The message is one line that names the problem and the fix. The command line
    prints it as ``nsgen: error: <message>`` and exits with status 2, having
    written nothing. It is a :class:`ValueError`, so library callers can catch either.

    Examples
    --------
    >>> issubclass(NsgenError, ValueError)
    True
    """
