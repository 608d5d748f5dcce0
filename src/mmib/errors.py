"""One error type for bad user input: it names the file, the field and the fix."""

from __future__ import annotations


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
        parts = []
        if self.file:
            parts.append(f"file '{self.file}'")
        if self.field:
            parts.append(f"field '{self.field}'")
        where = (", ".join(parts) + ": ") if parts else ""
        msg = f"{where}{problem}"
        if fix:
            msg += f"\n  fix: {fix}"
        super().__init__(msg)
