"""`PromptFilesError`, in a module of its own: the gateway catches it on every reload, and
importing it must not load the prompt files' parser (semver, Jinja2's neighbours)."""

from __future__ import annotations

from collections.abc import Sequence

from lockgate.config.loader import ConfigIssue

__all__ = ["PromptFilesError"]


class PromptFilesError(Exception):
    """The prompt files are invalid: `problems` has one line per mistake, of every file.

    `issues` keeps the structured ones (file, line, key path); a caller that checks more (e.g.
    the config's references to prompts) may add plain lines.
    """

    def __init__(self, problems: Sequence[ConfigIssue | str]) -> None:
        self.issues = [problem for problem in problems if isinstance(problem, ConfigIssue)]
        self.problems = [str(problem) for problem in problems]
        super().__init__("\n".join(self.problems))
