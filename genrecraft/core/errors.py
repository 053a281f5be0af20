"""The error base classes every part of genrecraft raises, and what the command line makes of them.

- :class:`UserError`: the input, the set-up or the machine's files need fixing; the message names the thing and
  the fix. Commands print ``error: <message>`` and exit with :data:`EXIT_USER` (2), the code argparse uses for
  bad arguments. ``ValueError`` and ``FileNotFoundError`` raised on bad input are treated the same.
- :class:`ModelFilesError`: a model's files cannot be obtained or do not verify (a :class:`UserError`: download
  them once, or point the environment variable named in the message at them).
- Anything else is a bug or a failure of the machine: the traceback is printed and the exit code is
  :data:`EXIT_INTERNAL` (1). An interrupted command exits with :data:`EXIT_INTERRUPTED` (130).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USER = 2
EXIT_INTERRUPTED = 130


class UserError(Exception):
    """Something the user can fix, named with its fix in the message (exit code 2 on the command line)."""


class ModelFilesError(UserError, RuntimeError):
    """A model's files cannot be obtained or do not verify."""


USER_ERRORS = (UserError, ValueError, FileNotFoundError)
"""What the command line reports as ``error: ...`` with exit code 2 rather than as a traceback."""
