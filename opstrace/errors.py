"""The one exception base of this project's rules.

Every rule that refuses something raises a subclass of `OpstraceError` whose message is
one line for the operator: the field, the value and the rule. The program reports such
an error as that line and nothing else (see `components.bail`); anything else that is
raised is a bug and keeps its traceback.
"""

from __future__ import annotations


class OpstraceError(ValueError):
    """Raised when a rule of this project is broken; the message says which and how to fix it."""
