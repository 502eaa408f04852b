"""Exception classes with short codes, spaCy-style: ``[T002] message``.

Every error a user can cause (a bad file, a bad setting) is one of these; the command
line turns them into one clear message and exit status 2, never a traceback.
"""

from __future__ import annotations


class SkillpulseError(Exception):
    """Base class: a problem the user can fix (input, configuration, environment)."""


class TaxonomyError(SkillpulseError, ValueError):
    """A taxonomy file is missing, malformed or inconsistent."""


class SourceError(SkillpulseError):
    """A source is missing, unreadable or misconfigured."""


class OutputError(SkillpulseError):
    """The output folder cannot be written."""


class UntrustedModelError(SkillpulseError, RuntimeError):
    """A model file contains types outside the reviewed allowlist."""


class SettingsError(SkillpulseError, ValueError):
    """A setting has an invalid value."""
