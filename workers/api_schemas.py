"""The JSON Schemas (2020-12, as OpenAPI 3.1 uses them) of the HTTP API's bodies: what each
route takes and answers. Data only; ``workers.api_openapi`` puts them in the OpenAPI
document, and a test holds the request schemas to ``workers.client``'s keyword arguments and
every answer to its schema.

The schemas describe the shapes; the rules themselves (NFC, no invisible characters, job id
shapes, payload depth…) are ``workers.validation``'s, enforced by the same calls the Python
client makes, and a refusal is a ``422`` problem naming the field.
"""

from __future__ import annotations

from typing import Any, Final

from ledger.credits import MAX_CREDITS
from providers.base import OPERATIONS
from providers.job_ids import JOB_ID_MAX_CHARS
from providers.registry import PROVIDER_NAMES
from workers.api_problems import PROBLEMS
from workers.validation import MAX_ID_LENGTH, MAX_TEXT_LENGTH

__all__ = ["SCHEMAS"]

_ID: Final[dict[str, Any]] = {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH}
_CREDITS: Final[dict[str, Any]] = {"type": "integer", "minimum": 1, "maximum": MAX_CREDITS}
_BALANCE: Final[dict[str, Any]] = {"type": "integer"}
_TIME: Final[dict[str, Any]] = {"type": "string", "format": "date-time"}
_JOB_ID: Final[dict[str, Any]] = {"type": "string", "minLength": 1, "maxLength": JOB_ID_MAX_CHARS}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _object(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": required,
        "properties": properties,
    }


_REQUESTS: Final[dict[str, dict[str, Any]]] = {
    "ChargeRequest": _object(
        ["generation_id", "account_id", "provider", "operation", "credits"],
        {
            "generation_id": _ID,
            "account_id": _ID,
            "provider": {"type": "string", "enum": list(PROVIDER_NAMES)},
            "operation": {"type": "string", "enum": list(OPERATIONS)},
            "credits": _CREDITS,
            "provider_job_id": _nullable(_JOB_ID),
        },
    ),
    "ResultRequest": _object(
        ["provider", "payload"],
        {
            "provider": {"type": "string", "enum": list(PROVIDER_NAMES)},
            "payload": {"type": "object", "description": "the provider's result, as it sent it"},
            "generation_id": _nullable(_ID),
            "operation": _nullable({"type": "string", "enum": list(OPERATIONS)}),
        },
    ),
    "GrantRequest": _object(
        ["account_id", "credits", "idempotency_key", "reason"],
        {
            "account_id": _ID,
            "credits": _CREDITS,
            "idempotency_key": _ID,
            "reason": {"type": "string", "minLength": 1, "maxLength": MAX_TEXT_LENGTH},
            "credit_kind": {
                "type": "string",
                "default": "promo",
                "description": "a credit kind of the policy version in force (its expiry rule)",
            },
            "subscription_id": _nullable(_ID),
            "cycle_ends_at_ms": _nullable(
                {
                    "type": "integer",
                    "minimum": 0,
                    "description": "end of the billing cycle, ms since the epoch (cycle_end)",
                }
            ),
        },
    ),
}

_RESPONSES: Final[dict[str, dict[str, Any]]] = {
    "Charge": _object(
        ["generation_id", "account_id", "credits", "balance"],
        {"generation_id": _ID, "account_id": _ID, "credits": _CREDITS, "balance": _BALANCE},
    ),
    "ResultKept": _object(
        ["message_id", "kept"],
        {"message_id": {"type": "string"}, "kept": {"const": True}},
    ),
    "Grant": _object(
        ["account_id", "credits", "idempotency_key", "balance"],
        {"account_id": _ID, "credits": _CREDITS, "idempotency_key": _ID, "balance": _BALANCE},
    ),
    "Balance": _object(["account_id", "balance"], {"account_id": _ID, "balance": _BALANCE}),
    "Receipt": _object(
        [
            "generation_id",
            "account_id",
            "provider",
            "operation",
            "provider_job_id",
            "status",
            "charge",
            "outcome",
            "refund",
            "refund_deadline",
            "policy_version",
        ],
        {
            "generation_id": _ID,
            "account_id": _ID,
            "provider": {"type": "string"},
            "operation": {"type": "string"},
            "provider_job_id": _nullable({"type": "string"}),
            "status": {
                "enum": ["waiting", "refunded", "kept", "not_charged"],
                "description": "waiting: no terminal outcome yet; refunded: the credits came "
                "back; kept: a terminal outcome that keeps them (a success); not_charged: "
                "charged as a hold that a refunded outcome voided (the credits were never "
                "taken)",
            },
            "charge": _object(
                ["credits", "charged_at"], {"credits": _CREDITS, "charged_at": _TIME}
            ),
            "outcome": _nullable(
                _object(
                    ["outcome", "reason", "at"],
                    {"outcome": {"type": "string"}, "reason": {"type": "string"}, "at": _TIME},
                )
            ),
            "refund": _nullable(
                _object(
                    ["credits", "refunded_at", "failure_known_at"],
                    {"credits": _CREDITS, "refunded_at": _TIME, "failure_known_at": _TIME},
                )
            ),
            "refund_deadline": _nullable(
                {
                    **_TIME,
                    "description": "while waiting: the hard deadline, past which a generation "
                    "with no success is refunded by the next sweep",
                }
            ),
            "policy_version": {"type": "string"},
        },
    ),
    "Problem": {
        "type": "object",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string", "enum": [f"urn:refundry:problem:{n}" for n in PROBLEMS]},
            "title": {"type": "string"},
            "status": {"type": "integer", "enum": sorted({s for s, _ in PROBLEMS.values()})},
            "detail": {"type": "string"},
            "field": {"type": "string"},
            "error": {"type": "string"},
        },
    },
}

SCHEMAS: Final[dict[str, dict[str, Any]]] = {**_REQUESTS, **_RESPONSES}
"""Schema name → JSON Schema: ``components.schemas`` of the OpenAPI document."""
