"""The one exception type the mining library raises for bad input."""

from __future__ import annotations


class MiningInputError(ValueError):
    """An event log cannot be read or mined; ``message`` says what is wrong and what to do.

    The message is written for the person who uploaded the file (it is shown in the UI as is),
    so it names the column / row / value at fault and the fix, never a Python traceback.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message
