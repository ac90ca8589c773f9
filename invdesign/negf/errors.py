"""Exceptions raised by the NEGF engine."""


class NEGFInputError(ValueError):
    """An input (matrix, lead, energy grid) is malformed; the message names the input and the reason."""


class ConvergenceError(RuntimeError):
    """An iterative solver did not converge; ``history`` holds its residuals, one per iteration."""

    def __init__(self, message: str, history: list[float] | None = None):
        self.history = list(history or [])
        if self.history:
            tail = ", ".join(f"{r:.3e}" for r in self.history[-5:])
            message = f"{message} (last residuals: {tail}; {len(self.history)} iterations)"
        super().__init__(message)
