"""The HTTP API's routes: one table (:data:`API_ROUTES`) from which the server's routes and
the OpenAPI document are both built, and what each route does.

Each write calls the same ``workers.client`` function a Python pipeline calls, with the
body's fields as its keyword arguments (the same names, the same validation), and answers
only once the ledger committed: a charge or a grant is in the ledger, a result is in the
inbox (202: the workers apply it). The reads use the ledger the same way.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from handlers.policy_rules import rfc3339
from ledger.errors import InvalidInput, NotFound
from ledger.receipts import Receipt, read_receipt
from workers import client, runtime, validation
from workers.api_problems import Answer, answer

__all__ = ["API_ROUTES", "ApiRoute", "body_arguments"]

Run = Callable[[dict[str, Any], Mapping[str, str]], Answer]
"""``(body, path parameters) -> Answer``: run in a worker thread (it blocks on the ledger)."""


@dataclass(frozen=True, slots=True)
class ApiRoute:
    """One route: ``path`` as OpenAPI writes it (``{name}`` parameters), its operation id and
    summary, the component schemas of its request body (None: no body) and of its success
    answer, and :data:`Run`. ``writes``: it takes an ``Idempotency-Key``."""

    method: str
    path: str
    operation_id: str
    summary: str
    request: str | None
    status: int
    response: str
    run: Run

    @property
    def writes(self) -> bool:
        return self.method == "POST"


def body_arguments(body: Mapping[str, Any], function: Callable[..., Any]) -> dict[str, Any]:
    """``body``'s fields as ``function``'s keyword arguments: ``InvalidInput`` naming the
    first field ``function`` does not take, or the first required argument missing."""
    params = inspect.signature(function).parameters
    for name in body:
        if name not in params:
            raise InvalidInput(f"{name} is not a field of this request", field=name)
    for name, param in params.items():
        if param.default is inspect.Parameter.empty and name not in body:
            raise InvalidInput(f"{name} is required", field=name)
    return dict(body)


def _charge(body: dict[str, Any], params: Mapping[str, str]) -> Answer:
    kwargs = body_arguments(body, client.charge)
    balance = client.charge(**kwargs)
    return answer(
        200,
        {
            "generation_id": kwargs["generation_id"],
            "account_id": kwargs["account_id"],
            "credits": kwargs["credits"],
            "balance": balance,
        },
    )


def _result(body: dict[str, Any], params: Mapping[str, str]) -> Answer:
    message_id = client.report_result(**body_arguments(body, client.report_result))
    return answer(202, {"message_id": message_id, "kept": True})


def _grant(body: dict[str, Any], params: Mapping[str, str]) -> Answer:
    kwargs = body_arguments(body, client.grant)
    balance = client.grant(**kwargs)
    shown = {name: kwargs[name] for name in ("account_id", "credits", "idempotency_key")}
    return answer(200, {**shown, "balance": balance})


def _balance(body: dict[str, Any], params: Mapping[str, str]) -> Answer:
    account_id = validation.identifier(params["account_id"], field="account_id")
    return answer(200, {"account_id": account_id, "balance": client.balance(account_id)})


def _generation(body: dict[str, Any], params: Mapping[str, str]) -> Answer:
    generation_id = validation.identifier(params["generation_id"], field="generation_id")
    receipt = read_receipt(runtime.ledger().db, generation_id)
    if receipt is None:
        raise NotFound("no charge is recorded for this generation", generation_id=generation_id)
    return answer(200, receipt_body(receipt))


def receipt_body(receipt: Receipt) -> dict[str, Any]:
    """The receipt a platform can show its customer: the charge, the outcome, the refund
    (credits, when) or, while it waits, the deadline past which it is refunded, and the
    policy version that judges it (the refund's own, once refunded)."""
    gen = receipt.generation
    judged_by = runtime.in_force(gen.charged_at_ms).name
    refunded = receipt.refund_credits is not None and receipt.refunded_at_ms is not None
    waiting = gen.outcome is None
    outcome = None
    if gen.outcome is not None:
        outcome = {
            "outcome": gen.outcome.value,
            "reason": gen.outcome_reason or "",
            "at": rfc3339(receipt.outcome_at_ms or gen.charged_at_ms),
        }
    refund = None
    if refunded:
        refund = {
            "credits": receipt.refund_credits,
            "refunded_at": rfc3339(receipt.refunded_at_ms or 0),
            "failure_known_at": rfc3339(receipt.refund_failure_known_at_ms or 0),
        }
    deadline = gen.deadline_at_ms if waiting else None
    voided = receipt.hold_state == "voided"  # a hold voided: the credits were never taken
    return {
        "generation_id": gen.generation_id,
        "account_id": gen.account_id,
        "provider": gen.provider,
        "operation": gen.operation,
        "provider_job_id": gen.provider_job_id,
        "status": "refunded"
        if refunded
        else "not_charged"
        if voided
        else "waiting"
        if waiting
        else "kept",
        "charge": {"credits": gen.credits, "charged_at": rfc3339(gen.charged_at_ms)},
        "outcome": outcome,
        "refund": refund,
        "refund_deadline": None if deadline is None else rfc3339(deadline),
        "policy_version": receipt.refund_policy_version
        or receipt.decided_policy_version
        or receipt.charge_policy_version
        or judged_by,
    }


API_ROUTES: Final[tuple[ApiRoute, ...]] = (
    ApiRoute(
        "POST",
        "/v1/charges",
        "createCharge",
        "Charge a generation's credits (idempotent on generation_id)",
        "ChargeRequest",
        200,
        "Charge",
        _charge,
    ),
    ApiRoute(
        "POST",
        "/v1/results",
        "reportResult",
        "Report a provider's result; kept in the inbox, applied by the workers",
        "ResultRequest",
        202,
        "ResultKept",
        _result,
    ),
    ApiRoute(
        "POST",
        "/v1/grants",
        "createGrant",
        "Grant credits once per idempotency_key",
        "GrantRequest",
        200,
        "Grant",
        _grant,
    ),
    ApiRoute(
        "GET",
        "/v1/accounts/{account_id}/balance",
        "getBalance",
        "An account's balance in credits (0 for an account never seen)",
        None,
        200,
        "Balance",
        _balance,
    ),
    ApiRoute(
        "GET",
        "/v1/generations/{generation_id}",
        "getGeneration",
        "A generation's receipt: charge, outcome, refund or refund deadline, policy version",
        None,
        200,
        "Receipt",
        _generation,
    ),
)
"""Every route of the API but ``GET /v1/openapi.json`` (the document built from this)."""
