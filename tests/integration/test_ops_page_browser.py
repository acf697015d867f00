"""The ops page in a real browser (headless Chromium driven by Playwright) over real
workers, Redis and a SQLite ledger: an on-call engineer logs in, finds a dead letter, reads
its redacted message, fixes its cause, replays it and sees it applied and gone. Anonymous
visitors are sent to the login form, a form posted from another site is refused, and so is
a POST of the engineer's own session without the form's CSRF token."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.support.browser import chromium
from tests.support.commands import WorkerProcesses
from tests.support.ingress import start
from tests.support.ops import (
    LATE_GENERATION,
    LATE_JOB,
    OPS_TOKEN,
    charge_late_generation,
    counted,
    labelled,
    ledger_sql,
    refunds_by_provider_outcome,
    run_generations,
    scrape,
)
from tests.support.waiting import wait_until

pytestmark = [
    pytest.mark.browser,
    pytest.mark.parametrize("ledger_url", ["sqlite"], indirect=True),
]

ATTACKER = "http://attacker.test"


def _attacker_form(action: str) -> str:
    """A page of another site whose form posts to the ops page with a made-up token."""
    return (
        "<!doctype html><title>win a prize</title>"
        f'<form method="post" action="{action}">'
        '<input type="hidden" name="csrf_token" value="guessed">'
        '<button type="submit">claim</button></form>'
    )


def _log_in(page: Page, url: str) -> None:
    page.goto(f"{url}/ops/")
    expect(page).to_have_url(f"{url}/ops/login")
    page.fill('input[name="token"]', OPS_TOKEN)
    page.click('button:has-text("Log in")')
    expect(page).to_have_url(f"{url}/ops/")


def test_an_engineer_replays_a_fixed_dead_letter_and_sees_it_applied_and_gone(
    workers: WorkerProcesses, refundry_env: dict[str, str], tmp_path: Path
) -> None:
    workers.start(processes=1, threads=2)
    late = run_generations()
    url = refundry_env["DATABASE_URL"]
    web = start({**refundry_env, "REFUNDRY_OPS_TOKEN": OPS_TOKEN}, tmp_path)
    try:
        with chromium() as browser:
            anonymous = browser.new_context().new_page()
            anonymous.goto(f"{web.url}/ops/dead-letters/{late}")
            expect(anonymous).to_have_url(f"{web.url}/ops/login")
            anonymous.fill('input[name="token"]', "not-the-token-but-long-enough")
            anonymous.click('button:has-text("Log in")')
            expect(anonymous.get_by_role("alert")).to_have_text("That is not the ops token.")
            refused = anonymous.request.post(f"{web.url}/ops/dead-letters/{late}/purge", form={})
            assert refused.status == 403

            context = browser.new_context()
            page = context.new_page()
            _log_in(page, web.url)
            row = page.locator(f'tr.dead-letter[data-message-id="{late}"]')
            expect(row).to_contain_text("ChargeNotFound")
            expect(row).to_contain_text("kling")
            expect(page.locator("#conflicts")).to_contain_text("g-failed-1")
            expect(page.locator("#sla")).to_contain_text("refunds4")
            page.screenshot(path=str(tmp_path / "ops-page.png"), full_page=True)
            page.select_option('select[name="reason"]', "ChargeNotFound")
            page.select_option('select[name="provider"]', "kling")
            page.click('#dead-letters button:has-text("Filter")')
            expect(row).to_be_visible()
            assert OPS_TOKEN not in page.content()

            page.click(f'a[href="/ops/dead-letters/{late}"]')
            expect(page.locator("#payload")).to_contain_text(LATE_JOB)
            expect(page.locator("h1")).to_contain_text(late)

            site = context.new_page()
            site.route(
                f"{ATTACKER}/**",
                lambda route: route.fulfill(
                    content_type="text/html",
                    body=_attacker_form(f"{web.url}/ops/dead-letters/{late}/purge"),
                ),
            )
            site.goto(f"{ATTACKER}/prize")
            with site.expect_navigation() as crossed:
                site.click("button")
            assert crossed.value is not None and crossed.value.status == 403
            no_token = context.request.post(
                f"{web.url}/ops/dead-letters/{late}/replay", form={}, max_redirects=0
            )
            assert no_token.status == 403
            assert ledger_sql(
                url, f"SELECT count(*) FROM dead_letters WHERE message_id = '{late}'"
            ) == [(1,)]

            charge_late_generation()
            page.click('button:has-text("Replay")')
            expect(page).to_have_url(f"{web.url}/ops/")
            expect(page.get_by_role("status")).to_contain_text(f"Replayed {late}")
            wait_until(
                lambda: (
                    ledger_sql(
                        url,
                        "SELECT count(*) FROM entries "
                        f"WHERE kind = 'refund' AND generation_id = '{LATE_GENERATION}'",
                    )
                    == [(1,)]
                ),
                timeout=60,
                message="the replayed result was not applied",
            )
            page.reload()
            expect(page.locator("tr.dead-letter")).to_have_count(0)
            expect(page.locator("#dead-letters")).to_contain_text("No dead letters")
            expect(page.locator("#sla")).to_contain_text("refunds5")

        samples = scrape(web.url)
    finally:
        web.close()
    refunds = refunds_by_provider_outcome(url)
    assert counted(refunds)[("kling", "failed")] == 3
    assert labelled(samples, "refundry_refunds_total", "provider", "outcome") == counted(refunds)
    assert labelled(samples, "refundry_dead_letters", "queue", "reason") == {}
    assert samples[("refundry_inbox_pending", frozenset())] == 0
