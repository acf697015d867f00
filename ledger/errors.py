"""Refundry's exception tree.

Every error that Refundry raises on purpose descends from one root, so that a caller can
catch at the level it cares about and a dead letter's reason is the class name plus the
structured fields (``RefundryError.fields``)::

    RefundryError
    ├── LedgerError                 the ledger refused an operation
    │   ├── InsufficientCredits     a charge would overdraw the balance
    │   ├── ChargeNotFound          no charge is recorded for the generation (yet)
    │   ├── IdempotencyConflict     the same key was reused with other inputs
    │   ├── ResultForAnotherJob     a result names another job than the generation's charge
    │   └── InvalidAmount ·         credits that are not a whole number in range
    ├── InvalidInput                an argument breaks a documented rule (``field``)
    │   ├── InvalidAmount ·         (also a LedgerError)
    │   ├── InvalidIdentifier       an id or key: empty, padded, control characters, too long
    │   ├── UnknownOperation        not one of the operations a charge may name
    │   └── InvalidPayload ·        not strict JSON, or over the size or depth cap
    ├── Unclassifiable              a payload that cannot be classified (providers/)
    │   ├── InvalidPayload ·        (also an InvalidInput)
    │   └── UnknownProvider         no adapter for that provider name
    ├── NotFound                    what was asked for does not exist
    │   ├── LedgerNotFound          no ledger at the configured location
    │   ├── AccountNotFound         the ledger has never seen the account
    │   ├── DeadLetterNotFound      no dead letter with that message id
    │   └── NothingKnownById        no generation or purchase has that id
    ├── EventNotConfirmed           the payment provider's API belies a payment event
    │   └── NotAtPaymentProvider    the object the event names does not exist there
    ├── PaymentProviderUnavailable  Stripe did not answer usefully (retried, same key)
    ├── PaymentRejected             Stripe refused with a client error no retry can fix
    │   └── NoSuchObject            Stripe has no object with that id for our key
    ├── IdempotencyKeyReused        Stripe saw this idempotency key with other parameters
    ├── IdempotencyKeyInUse         an HTTP API request under this key is still being answered
    ├── PackUnknown                 a purchase that is no pack of the catalog
    ├── EventNotDelivered           the platform's endpoint never took an event out (3 days)
    ├── LedgerUnavailable           the ledger's database cannot be reached (retry later)
    ├── PolicyVersionUnknown        a charge's policy version is not in the policy (retried)
    ├── ProviderError               a provider's API (status, job fetch) did not help
    │   ├── ProviderUnavailable     no useful answer within the retry budget (retried)
    │   ├── ProviderAuthFailed      the provider refused our API key
    │   ├── ProviderRequestRejected a client error no retry can fix
    │   ├── JobGone                 the job (or the API) is gone upstream (404/410)
    │   ├── JobNotFinished          the event says done, the fetched job is pending (retried)
    │   ├── NoStatusQuery           no status query can classify this operation
    │   └── InvalidJobId            a job id not of the provider's documented shape
    └── ConfigurationError          a setting that cannot be used
        └── PolicyError             a refund policy file that cannot be used (key, line)

``·`` marks a class with two parents: ``except LedgerError`` and ``except InvalidInput``
both catch ``InvalidAmount``. Bad input is refused before anything is stored; the rules
are ``workers.validation``'s.

``Permanent`` marks the errors that no retry can fix: they are dead-lettered at once.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ledger.redaction import redact_text

__all__ = [
    "AccountNotFound",
    "ChargeNotFound",
    "ConfigurationError",
    "DeadLetterNotFound",
    "EventNotConfirmed",
    "EventNotDelivered",
    "IdempotencyConflict",
    "IdempotencyKeyInUse",
    "IdempotencyKeyReused",
    "InsufficientCredits",
    "InvalidAmount",
    "InvalidIdentifier",
    "InvalidInput",
    "InvalidJobId",
    "InvalidPayload",
    "JobGone",
    "JobNotFinished",
    "LedgerError",
    "LedgerNotFound",
    "LedgerUnavailable",
    "NoStatusQuery",
    "NoSuchObject",
    "NotAtPaymentProvider",
    "NotFound",
    "NothingKnownById",
    "PackUnknown",
    "PaymentProviderUnavailable",
    "PaymentRejected",
    "PolicyError",
    "PolicyVersionUnknown",
    "ProviderAuthFailed",
    "ProviderError",
    "ProviderRequestRejected",
    "ProviderUnavailable",
    "RefundryError",
    "ResultForAnotherJob",
    "Unclassifiable",
    "UnknownOperation",
    "UnknownProvider",
]


class RefundryError(Exception):
    """Refundry refused to do something."""

    #: True when retrying the same input can never succeed: dead-letter it at once.
    permanent: ClassVar[bool] = False

    def __init__(self, message: str | None = None, **fields: Any) -> None:
        self.fields: dict[str, Any] = fields
        text = message or (self.__doc__ or self.__class__.__name__).strip().splitlines()[0].rstrip(
            "."
        )
        if fields:
            text = f"{text} ({', '.join(f'{k}={v!r}' for k, v in fields.items())})"
        super().__init__(redact_text(text))

    @property
    def reason(self) -> str:
        """Machine-readable reason: the class name, then the fields (secrets masked)."""
        parts = [self.__class__.__name__, *(f"{k}={v}" for k, v in self.fields.items())]
        return redact_text(" ".join(parts))


class LedgerError(RefundryError):
    """The ledger refused an operation."""


class InsufficientCredits(LedgerError):
    """The charge would overdraw the account's balance."""

    permanent = True


class ChargeNotFound(LedgerError):
    """No charge is recorded for this generation."""


class IdempotencyConflict(LedgerError):
    """The idempotency key was already used with different inputs."""

    permanent = True


class ResultForAnotherJob(LedgerError):
    """The result names another provider job than the one charged for the generation."""

    permanent = True


class InvalidInput(RefundryError):
    """An argument breaks a documented rule; nothing was stored.

    ``fields["field"]`` names the argument; the other fields say what is wrong with it.
    """

    permanent = True


class InvalidAmount(InvalidInput, LedgerError):
    """Credits must be a whole number within the documented range."""


class InvalidIdentifier(InvalidInput):
    """An id or key must be a non-empty, unpadded string without control characters."""


class UnknownOperation(InvalidInput):
    """Not one of the operations a charge may name."""


class Unclassifiable(RefundryError):
    """The payload cannot be classified; it is never guessed at."""

    permanent = True


class InvalidPayload(InvalidInput, Unclassifiable):
    """A payload must be a strict JSON object within the size and depth caps."""


class UnknownProvider(Unclassifiable):
    """No provider adapter has this name."""


class NotFound(RefundryError):
    """What was asked for does not exist."""

    permanent = True


class LedgerNotFound(NotFound):
    """No ledger exists at the configured location."""


class AccountNotFound(NotFound):
    """The ledger has never seen this account."""


class DeadLetterNotFound(NotFound):
    """No dead letter has this message id."""


class NothingKnownById(NotFound):
    """No generation or purchase (checkout session, payment intent) has this id."""


class EventNotConfirmed(RefundryError):
    """The payment provider's API, asked with our key, does not confirm what the event says;
    nothing was applied.

    A payment event is only a hint: every effect on money is decided on the object it names
    as the provider's API returns it. The fields name the event (``event_id``, ``type``), the
    object (``object``, ``id``) and what the provider says of it (``status``…).
    """

    permanent = True


class NotAtPaymentProvider(EventNotConfirmed):
    """The object a payment event names does not exist at the payment provider: made up, or
    another account's or mode's."""


class LedgerUnavailable(RefundryError):
    """The ledger's database cannot be reached; the same call may succeed later."""


class ConfigurationError(RefundryError):
    """A setting cannot be used."""

    permanent = True


class PolicyError(ConfigurationError):
    """A refund policy file cannot be used; nothing starts with it.

    The fields name the ``file``, the ``line`` (1-based) and the ``key`` (a dotted path such
    as ``version[2].outcomes.kling:video``) it is about.
    """


class PolicyVersionUnknown(RefundryError):
    """The policy version a generation's charge recorded is not in this process's policy
    (a newer file, even after reading it again): the generation is not judged by another
    version; the message is retried, then dead-lettered with this reason."""


class ProviderError(RefundryError):
    """A provider's API (a status poll, a thin event's job fetch) did not give an answer."""


class ProviderUnavailable(ProviderError):
    """The provider's API did not answer usefully within the retry budget."""


class ProviderAuthFailed(ProviderError):
    """The provider refused the API key."""

    permanent = True


class ProviderRequestRejected(ProviderError):
    """The provider refused the request with a client error no retry can fix."""

    permanent = True


class JobGone(ProviderError):
    """The job, or the whole API, is gone upstream."""

    permanent = True

    def __init__(self, *, provider: str, job_id: str, status: int) -> None:
        super().__init__(provider=provider, job_id=job_id, status=status)
        self.provider = provider
        self.job_id = job_id
        self.status = status


class JobNotFinished(ProviderError):
    """The event says the job ended but the fetched job is still pending; retried later."""


class NoStatusQuery(ProviderError):
    """The provider has no status query whose answer can be classified for this operation."""

    permanent = True


class InvalidJobId(ProviderError):
    """A provider job id is not of the shape the provider documents; it is never sent."""

    permanent = True


class PaymentProviderUnavailable(RefundryError):
    """Stripe did not answer usefully; the outcome is unknown, retry with the same key."""


class PaymentRejected(RefundryError):
    """Stripe refused the request with a client error that no retry can fix."""

    permanent = True


class NoSuchObject(PaymentRejected):
    """Stripe has no object with this id for our key (404 ``resource_missing``,
    https://docs.stripe.com/error-codes/resource-missing): made up, or another account's or
    mode's."""


class IdempotencyKeyReused(RefundryError):
    """Stripe already saw this idempotency key with other parameters."""

    permanent = True


class PackUnknown(RefundryError):
    """The purchase is not a pack of the catalog (``REFUNDRY_PACKS``): a price outside it, or
    no line item at all."""

    permanent = True


class IdempotencyKeyInUse(RefundryError):
    """Another request under this ``Idempotency-Key`` (and API key) is still being answered;
    retry once it is done (Stripe's concurrent-request rule,
    https://docs.stripe.com/api/idempotent_requests)."""


class InvalidLotTerms(InvalidInput, LedgerError):
    """A grant's credit kind or expiry terms are not usable (an unknown expiry rule, an
    expiry time the rule does not take, a kind name out of shape)."""


class EventNotDelivered(RefundryError):
    """The platform's endpoint (``REFUNDRY_EVENTS_URL``) did not answer an event out with a
    2xx within the retry budget (``REFUNDRY_EVENTS_GIVE_UP_S``): the event is a dead letter
    of its own (``handlers.events_out``), replayable, and the account's next event goes."""
