"""The errors a learner's or user's step causes (not a bug): notebooks show them as one clear message."""
from __future__ import annotations


class UserError(Exception):
    """A missing step or a bad input. In a notebook it shows its message alone, without a traceback."""

    def _render_traceback_(self) -> list[str]:
        """IPython's hook: the lines a notebook shows instead of the traceback."""
        return [f"{type(self).__name__}: {self}"]


class MissingModelError(UserError, FileNotFoundError):
    """A lesson needs a model that an earlier lesson (or command) has not trained yet."""


class FolderExistsError(UserError, FileExistsError):
    """A step would write into a folder that already holds something: it refuses rather than delete it."""


class OutputExistsError(UserError, FileExistsError):
    """A step would write over a file that is already there: it refuses unless told to (--overwrite)."""


class BadArgumentError(UserError, ValueError):
    """An argument that is not one of its choices, or out of its range: a profile, backbone or split name, a count."""


class NoImagesError(UserError, ValueError):
    """A folder or split without a single image that could be read and scored."""
