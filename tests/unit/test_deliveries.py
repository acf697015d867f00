"""Which identity makes a delivery recognisable when it comes again."""

from __future__ import annotations

from providers.deliveries import delivery_key


def test_a_stripe_event_is_known_by_its_event_id() -> None:
    event = {"id": "evt_1Q2w3E", "object": "event", "type": "charge.refunded", "data": {}}
    assert delivery_key("stripe", event) == "event:evt_1Q2w3E"
    assert delivery_key("stripe", {"object": "event"}) is None


def test_a_delivery_is_known_by_what_it_says_not_by_the_door_it_came_through() -> None:
    body = {"id": "evt_abc", "type": "video.completed", "data": {"id": "video_1"}}
    assert delivery_key("openai", body, webhook_id="msg_2Kp") == "event:evt_abc"
    assert delivery_key("openai", body) == "event:evt_abc"
    failed = {"id": "p-1", "status": "failed", "error": "boom"}
    assert delivery_key("replicate", failed, webhook_id="msg_9") == "job:p-1:failed"


def test_a_delivery_that_names_no_event_or_job_is_known_by_its_webhook_id() -> None:
    assert delivery_key("replicate", {"status": "failed"}, webhook_id="msg_2Kp") == (
        "webhook:msg_2Kp"
    )
    assert delivery_key("replicate", {"status": "failed"}) is None


def test_a_result_without_an_event_id_is_known_by_its_job_and_outcome() -> None:
    failed = {"id": "p-1", "status": "failed", "error": "boom"}
    assert delivery_key("replicate", failed) == "job:p-1:failed"
    assert delivery_key("replicate", {**failed, "error": "other words"}) == "job:p-1:failed"
    succeeded = {"id": "p-1", "status": "succeeded", "output": "https://r.example/a.png"}
    assert delivery_key("replicate", succeeded) == "job:p-1:succeeded"


def test_an_unclassifiable_payload_has_no_identity() -> None:
    assert delivery_key("replicate", {"id": "p-1"}) is None
    assert delivery_key("replicate", {"status": "failed"}) is None


def test_kind_padded_job_id_delivery_identity_is_never_trimmed() -> None:
    exact = {"id": "p-1", "status": "failed", "error": "boom"}
    padded = {**exact, "id": " p-1"}
    assert delivery_key("replicate", padded) != delivery_key("replicate", exact)


def test_kind_padded_job_id_two_generations_reports_are_never_one_delivery() -> None:
    failed = {"id": "p-1", "status": "failed", "error": "boom"}
    first = delivery_key("replicate", failed, generation_id="gen-a")
    second = delivery_key("replicate", failed, generation_id="gen-b")
    assert first is not None and second is not None and first != second
    assert delivery_key("replicate", failed, generation_id="gen-a") == first
