"""What the job reports to the user as one ``error:`` line and an exit status."""

from __future__ import annotations

# 2 is argparse's own status for a usage error.
EXIT_FAILED, EXIT_KAFKA, EXIT_CHECKPOINT = 1, 3, 4


class JobError(RuntimeError):
    """A problem the user can fix; ``exit_code`` tells scripts which kind."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code
