"""One error type for bad user input: it names the file, the field and the fix.

:class:`InputWarning` says the same about input that runs but is likely a
mistake (an all-constant view): the run goes on and the stage prints it.
"""

from __future__ import annotations


def describe(problem: str, file: str | None, field: str | None, fix: str | None) -> str:
    """``file '<file>', field '<field>': <problem>`` and an indented ``fix:`` line."""
    parts = []
    if file:
        parts.append(f"file '{file}'")
    if field:
        parts.append(f"field '{field}'")
    where = (", ".join(parts) + ": ") if parts else ""
    msg = f"{where}{problem}"
    if fix:
        msg += f"\n  fix: {fix}"
    return msg


class InputError(ValueError):
    """Bad input (a data file, a params entry, an argument).

    The message always says where (file and/or field), what is wrong and how
    to fix it, so a user never has to read a traceback to act on it.
    """

    def __init__(self, problem: str, *, file: str | None = None, field: str | None = None,
                 fix: str | None = None) -> None:
        self.problem = problem
        self.file = None if file is None else str(file)
        self.field = field
        self.fix = fix
        super().__init__(describe(problem, self.file, field, fix))


class InputWarning(UserWarning):
    """Input that is usable but probably not what was meant; worded like :class:`InputError`."""

    def __init__(self, problem: str, *, file: str | None = None, field: str | None = None,
                 fix: str | None = None) -> None:
        super().__init__(describe(problem, None if file is None else str(file), field, fix))
