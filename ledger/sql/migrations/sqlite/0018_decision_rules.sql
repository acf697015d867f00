-- What each decision was made under, for `refundry explain`: the policy version and the rule
-- (a policy key such as `refund_outcomes` or `outcomes.kling:video`) that decided a
-- generation's outcome, kept or refunded, and each payment decision. Rows decided before
-- this migration hold NULL (a refund entry still names its version).
ALTER TABLE generations ADD COLUMN decided_policy_version TEXT;
ALTER TABLE generations ADD COLUMN decided_rule TEXT;
ALTER TABLE payment_decisions ADD COLUMN policy_version TEXT;
ALTER TABLE payment_decisions ADD COLUMN rule TEXT;
