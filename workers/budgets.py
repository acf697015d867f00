"""Every time budget, derived from one :class:`~workers.settings.Settings`, and the check
that each path's worst case still refunds inside the one-hour promise.

The paths a failed generation can take to its refund:

- **result**: its result reaches a worker, which may fetch the job (a thin event: one status
  API call) and settles it. A result that keeps failing transiently is retried by dramatiq
  ``max_retries`` times, each run cut at the actor's time limit, with jittered backoff
  between runs (at most twice ``min_backoff · 2ⁿ``, capped at ``max_backoff``);
- **lost message**: the broker lost the message; the inbox sweep sends the event again once
  it is older than the grace period, at its next run, and a worker applies it;
- **stuck**: no result ever settles the generation; the stuck sweep refunds it at its hard
  deadline. The sweep runs every ``sweep_interval_s``, a generation it looked at is leased
  for ``poll_interval_s``, and its polls share ``poll_budget_s``. Volume adds no sweep: a
  sweep claims ``stuck_batch`` generations at a time until none is due, refunding those past
  their hard deadline as it claims them (before it waits for any poll).

On RabbitMQ (``BROKER_URL=amqp://…``) dramatiq holds a delayed message (a retry's backoff, a
lane's wait) unacknowledged in the worker until its eta, and RabbitMQ closes the channel of a
consumer that holds a delivery past its ``consumer_timeout`` (30 min by default,
https://www.rabbitmq.com/docs/consumers#acknowledgement-timeout), redelivering the message:
a delay past the timeout would be redelivered and held again forever. The longest delay is
therefore refused above half the timeout (:meth:`Budgets.check_rabbitmq`): the other half is
room for the message to wait in the worker's queue once its eta has come. A message being
worked on is unacknowledged too, up to its actor's time limit: the longest time limit is
refused above half the timeout the same way.

The time limit of the results actor covers the slowest status call (every attempt timing
out, the longest wait between attempts) plus the message's own database work, so dramatiq
never cuts a fetch that the retry rules still allow. The payments actor's covers the
Stripe calls one payment event may make.
"""

from __future__ import annotations

from dataclasses import dataclass

from handlers.deadlines import DeadlinePolicy
from ledger.errors import ConfigurationError
from workers.lanes import LONGEST_WAIT_MS
from workers.settings import Settings

__all__ = ["LEDGER_WORK_S", "STRIPE_CALLS_PER_EVENT", "STRIPE_CALL_WORST_S", "Budgets"]

LEDGER_WORK_S = 30
"""Room for one message's own database work (a busy PostgreSQL, a SQLite writer queue)."""
STRIPE_CALL_WORST_S = 3 * (5 + 30) + 4
"""One Stripe call: the library's 2 network retries, each up to 5 s to connect and 30 s to
read (``providers.stripe_api.StripeAPI``), and its backoff of at most 2 s between them."""
STRIPE_CALLS_PER_EVENT = 4
"""A payment event retrieves the objects it names and may refund: a few calls at most."""


@dataclass(frozen=True, slots=True)
class Budgets:
    """The derived budgets of one settings object (milliseconds unless named ``_s``)."""

    settings: Settings

    @property
    def status_call_worst_s(self) -> int:
        """One status API call with every attempt timing out and the longest waits."""
        s = self.settings
        return (
            s.status_attempts * s.status_timeout_s + (s.status_attempts - 1) * s.status_max_wait_s
        )

    @property
    def result_time_limit_ms(self) -> int:
        """dramatiq's time limit of the results actor."""
        return (self.status_call_worst_s + LEDGER_WORK_S) * 1000

    @property
    def payment_time_limit_ms(self) -> int:
        """dramatiq's time limit of the payments actor."""
        return (STRIPE_CALLS_PER_EVENT * STRIPE_CALL_WORST_S + LEDGER_WORK_S) * 1000

    @property
    def retry_backoff_worst_ms(self) -> int:
        """All of dramatiq's backoff before a failing message is dead-lettered."""
        s = self.settings
        total, delay = 0, 2 * s.min_backoff_ms
        for done in range(s.max_retries):
            if delay >= s.max_backoff_ms:  # every later delay is the cap: no power computed
                return total + (s.max_retries - done) * s.max_backoff_ms
            total, delay = total + delay, delay * 2
        return total

    @property
    def result_path_worst_ms(self) -> int:
        """A result applied on the last of its runs, each run cut at the time limit."""
        runs = self.settings.max_retries + 1
        return runs * self.result_time_limit_ms + self.retry_backoff_worst_ms

    @property
    def lost_message_worst_ms(self) -> int:
        """A lost message: re-sent by the inbox sweep, then applied (in one run)."""
        s = self.settings
        return s.inbox_grace_ms + s.sweep_interval_s * 1000 + self.result_time_limit_ms

    def stuck_path_worst_ms(self, deadlines: DeadlinePolicy) -> int:
        """From the charge: the latest hard deadline, then the lease, a sweep interval and
        the polls' budget before the sweep that refunds it is done."""
        s = self.settings
        after_deadline = s.poll_interval_s + s.sweep_interval_s + s.poll_budget_s
        return deadlines.latest_hard_ms() + after_deadline * 1000

    def check(self, deadlines: DeadlinePolicy) -> None:
        """Raise ``ConfigurationError`` naming the first path whose worst case is longer
        than the refund SLA."""
        promise = self.settings.refund_sla_ms
        paths = {
            "result": self.result_path_worst_ms,
            "lost message": self.lost_message_worst_ms,
            "stuck generation": self.stuck_path_worst_ms(deadlines),
        }
        for path, worst in paths.items():
            if worst > promise:
                raise ConfigurationError(
                    "these settings can refund later than the promise",
                    path=path,
                    worst_case_s=worst // 1000,
                    promise_s=promise // 1000,
                )

    @property
    def longest_delay_ms(self) -> int:
        """The longest a message is delayed: a retry's backoff or a lane's wait."""
        return max(self.settings.max_backoff_ms, LONGEST_WAIT_MS)

    @property
    def longest_time_limit_ms(self) -> int:
        """The longest an actor works on one message (the payments actor's by default)."""
        return max(self.result_time_limit_ms, self.payment_time_limit_ms)

    def check_rabbitmq(self) -> None:
        """On RabbitMQ, raise ``ConfigurationError`` when a delivery can be held
        unacknowledged past ``REFUNDRY_RABBITMQ_CONSUMER_TIMEOUT_MS``: naming that variable
        when the longest actor time limit exceeds half of it (the other half is room for
        the message to wait behind others the worker has fetched), naming
        ``REFUNDRY_MAX_BACKOFF_MS`` when the longest delay does (module docstring). On
        Redis there is nothing to check."""
        s = self.settings
        if s.amqp_url is None:
            return
        held = (
            (
                "an actor's time limit",
                "REFUNDRY_RABBITMQ_CONSUMER_TIMEOUT_MS",
                "longest_time_limit_ms",
            ),
            ("a delay", "REFUNDRY_MAX_BACKOFF_MS", "longest_delay_ms"),
        )
        for what, variable, measure in held:
            longest: int = getattr(self, measure)
            if 2 * longest > s.rabbitmq_consumer_timeout_ms:
                raise ConfigurationError(
                    f"{what} must stay within half of RabbitMQ's consumer timeout",
                    variable=variable,
                    **{measure: longest},
                    consumer_timeout_ms=s.rabbitmq_consumer_timeout_ms,
                )
