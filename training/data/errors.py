"""Errors raised by the data loaders."""

from __future__ import annotations


class DataIntegrityError(ValueError):
    """A data file failed its integrity check (checksum, truncation, magic number, content).

    The file is never used; the loader skips the source it came from.
    """

    def __init__(self, file: str, source: str, reason: str) -> None:
        self.file = file
        self.source = source
        self.reason = reason
        super().__init__(f"{file} from {source}: {reason}")


class DataUnavailable(RuntimeError):
    """No source could supply a data set. The message lists every source tried and why it failed."""

    def __init__(self, dataset: str, attempts: list[tuple[str, str]], help_text: str) -> None:
        self.dataset = dataset
        self.attempts = list(attempts)
        lines = [f"Could not load the {dataset} data set from any source:"]
        lines += [f"  {i}. {source}: {reason}" for i, (source, reason) in enumerate(attempts, 1)]
        lines.append(help_text)
        super().__init__("\n".join(lines))


class SourceFailed(Exception):
    """A source could not supply the files (missing, offline, command failed). Internal."""
