"""Errors of the RQ-compatible layer, under the names RQ uses; all derive from `OxanusError`."""

from __future__ import annotations

from oxanus_sync.errors import OxanusError


class NoSuchJobError(OxanusError):
    """No job with this id exists: it never did, was deleted, or its record expired."""


class InvalidJobOperation(OxanusError):  # noqa: N818 - RQ's name
    """The job is not in a state that allows this operation."""


class DuplicateJobError(OxanusError):
    """A job with this id is still waiting or running."""


class DeserializationError(OxanusError):
    """Stored job data could not be read with the serializer in use."""


class UnsafeCallableError(OxanusError):
    """A payload named a callable that this worker does not import or call."""
