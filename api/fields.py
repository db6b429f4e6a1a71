"""Request parameters as typed dependencies: each parses one path or query field with
``params.py`` and turns a ValueError into a 422 whose ``loc`` names that field."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from fastapi import Depends, Path, Query
from fastapi.exceptions import RequestValidationError
from pydantic import BeforeValidator, StringConstraints

from api.params import (
    ADDRESS_PATTERN,
    CURSOR_PATTERN,
    FACILITY_PATTERN,
    FAILED_PATTERN,
    TX_PATTERN,
    Cursor,
    FacilityRef,
    parse_address,
    parse_cursor,
    parse_facility,
    parse_failed_domain,
    parse_kind,
)
from redundancy.domains import Dimension, Kind

_DECIMAL = re.compile(r"-?[0-9]{1,78}")


def _decimal(value: object) -> object:
    """A path or query integer is written in decimal digits: pydantic's lax mode would also read
    "0.0" or " 1" as integers, which the schema (type integer) does not allow."""
    if isinstance(value, str) and not _DECIMAL.fullmatch(value):
        raise ValueError("must be an integer written in decimal digits")
    return value


DECIMAL = BeforeValidator(_decimal)
"""Metadata for an integer path or query parameter, after its ``Query``/``Path``: the schema says
integer, so "0.0" is refused (placed inside the type instead, it would turn the bounds into keys
the OpenAPI schema does not know: "ge" for "minimum")."""


def invalid(loc: tuple[str | int, ...], message: str, value: object) -> RequestValidationError:
    """The 422 FastAPI itself raises for a malformed field, for checks a pattern cannot express."""
    return RequestValidationError(
        [{"type": "value_error", "loc": loc, "msg": message, "input": value}]
    )


def _facility(
    facility: Annotated[
        str,
        Path(
            pattern=FACILITY_PATTERN,
            max_length=66,
            description="facility id (0x + 64 hex digits) or name (e.g. fra1)",
            examples=["fra1"],
        ),
    ],
) -> FacilityRef:
    try:
        return parse_facility(facility)
    except ValueError as exc:
        raise invalid(("path", "facility"), str(exc), facility) from None


def _address(
    address: Annotated[
        str,
        Path(
            pattern=ADDRESS_PATTERN,
            description="validator address: checksummed, or all lower-case hex",
        ),
    ],
) -> str:
    try:
        return parse_address(address)
    except ValueError as exc:
        raise invalid(("path", "address"), str(exc), address) from None


FailedDomain = Annotated[str, StringConstraints(pattern=FAILED_PATTERN)]
KindName = Literal[
    "hardware", "power", "geography", "network", "provider", "health", "0", "1", "2", "3", "4", "5"
]


def _failed(
    fail: Annotated[
        list[FailedDomain],
        Query(
            min_length=1,
            max_length=32,
            description="a failed domain as '<dimension>:<name>' or '<dimension>:0x<id>'; "
            "repeat for several (e.g. fail=power:ercot&fail=country:de)",
            examples=[["power:ercot"]],
        ),
    ],
) -> list[tuple[Dimension, bytes]]:
    out = []
    for i, ref in enumerate(fail):
        try:
            out.append(parse_failed_domain(ref))
        except ValueError as exc:
            raise invalid(("query", "fail", i), str(exc), ref) from None
    return out


def _facility_filter(
    facility: Annotated[
        str | None,
        Query(
            pattern=FACILITY_PATTERN,
            max_length=66,
            description="only proofs of this facility (id or name)",
        ),
    ] = None,
) -> FacilityRef | None:
    if facility is None:
        return None
    try:
        return parse_facility(facility)
    except ValueError as exc:
        raise invalid(("query", "facility"), str(exc), facility) from None


def _kind_filter(
    kind: Annotated[
        KindName | None,
        Query(
            description="only proofs of this kind: hardware, power, geography, network, "
            "provider, health (or 0-5)",
        ),
    ] = None,
) -> Kind | None:
    if kind is None:
        return None
    try:
        return parse_kind(kind)
    except ValueError as exc:
        raise invalid(("query", "kind"), str(exc), kind) from None


def _cursor(
    cursor: Annotated[
        str | None,
        Query(
            pattern=CURSOR_PATTERN,
            description="next_cursor of the previous page (opaque; omit for the first page)",
        ),
    ] = None,
) -> Cursor | None:
    if cursor is None:
        return None
    try:
        return parse_cursor(cursor)
    except ValueError as exc:
        raise invalid(("query", "cursor"), str(exc), cursor) from None


FacilityPathDep = Annotated[FacilityRef, Depends(_facility)]
AddressPathDep = Annotated[str, Depends(_address)]
FailedDomainsDep = Annotated[list[tuple[Dimension, bytes]], Depends(_failed)]
FacilityFilterDep = Annotated[FacilityRef | None, Depends(_facility_filter)]
KindFilterDep = Annotated[Kind | None, Depends(_kind_filter)]
CursorDep = Annotated[Cursor | None, Depends(_cursor)]
TxPath = Annotated[
    str, Path(pattern=TX_PATTERN, description="submission transaction hash (0x + 64 hex digits)")
]
IndexPath = Annotated[
    int,
    Path(ge=0, le=65_535, description="position of the proof in the submission (from 0)"),
    DECIMAL,
]
