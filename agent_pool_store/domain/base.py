"""The base of every wire model and the field helpers that give the reference's omissions."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, model_validator

U32 = Annotated[int, Field(ge=0, le=2**32 - 1)]
"""An unsigned 32-bit integer of the wire format."""
U64 = Annotated[int, Field(ge=0, le=2**64 - 1)]
"""An unsigned 64-bit integer of the wire format."""


def _is_empty(value: object) -> bool:
    return not value


def _is_none(value: object) -> bool:
    return value is None


def omitted_when_empty() -> Any:
    """A list field that defaults to empty and is left out of the wire JSON when empty."""
    return Field(default=(), exclude_if=_is_empty)


def omitted_when_null() -> Any:
    """An optional field that defaults to ``None`` and is left out of the wire JSON then."""
    return Field(default=None, exclude_if=_is_none)


class WireModel(BaseModel):
    """Immutable pydantic model whose ``model_dump_json()`` is the reference's wire JSON.

    Fields serialise in declaration order under their wire names. Unknown keys are ignored
    when reading.
    """

    model_config = ConfigDict(
        frozen=True,
        extra="ignore",
        serialize_by_alias=True,
        validate_by_alias=True,
        validate_by_name=True,
    )


class DefaultedWireModel(WireModel):
    """A wire model with Python defaults for fields the wire format requires.

    ``wire_required`` names fields that have a Python default for convenient construction
    but must be present when reading JSON, as in the reference. (Only these models pay for
    the check, which runs in Python.)
    """

    wire_required: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="before")
    @classmethod
    def _require_wire_fields(cls, data: Any, info: ValidationInfo) -> Any:
        if info.mode == "json" and isinstance(data, dict):
            missing = [name for name in cls.wire_required if name not in data]
            if missing:
                raise ValueError(f"missing required field(s): {', '.join(missing)}")
        return data
