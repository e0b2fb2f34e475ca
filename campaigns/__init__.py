"""Campaigns: one template, an audience of thousands, sent on schedule within Meta's limits.

The design
----------
A **campaign** is a template, a sender and an **audience** (``CampaignRow``, one per recipient,
its variables frozen at import). Its messages are ordinary Waypost messages (``Message.campaign``)
— ledger, states, callbacks, retries, expiry — created from its rows a slice at a time by the
**feeder**, never all at once.

Modules, top to bottom (each imports only those below it)::

    apis, admin, forms,     thin: call the services, render the selectors
    tasks, signals
    selectors               the campaign, progress, the report, the invalid rows (reads)
    services                create, start, pause, resume, cancel (writes)
    feeder                  one pass: rows → messages, at the pace, inside the window and limit
    lifecycle               the one state change (``transition``) and its callbacks
    progress                counts by row outcome and message state
    audience                import (CSV or JSON rows, streamed) and preflight
    variables               a row's columns → the template's send-time components (pure)
    models

Send windows are ``messaging.send.windows``: a message keeps its window, and the drain's claim
checks it before every attempt.

States::

    draft ──start──▶ scheduled ──send_at──▶ running ⇄ paused ──▶ completed
      └──────────────────┴────────cancel──────┴────────┴──────▶ cancelled

* **draft**: created with its audience imported and preflighted. Nothing is sent.
* **start** needs a preflight that passed, or ``skip_invalid`` (the invalid rows are then
  ``skipped``, never sent). Without ``send_at`` (or with one in the past) it runs at once.
* **running**: the feeder releases rows as messages. **paused** (by a user; by Waypost when
  the sender hits Meta's spam rate limit, 131048, during a marketing campaign, or when its
  template can no longer be sent): no row is released, and every message of the campaign not
  yet claimed for submission — due, waiting for its window, or a retry — is parked (its
  ``next_attempt_at`` pushed out of reach) in the pause's own transaction; only what a drain
  had already claimed still goes. Resume releases and un-parks.
* **completed**: every row is released (or skipped, expired) and none of its messages is still
  waiting to be submitted; delivered/read/failed go on arriving and the report follows them.
* **cancelled**: unreleased rows are skipped; its messages not yet submitted are parked at
  once and then cancelled (a second cancel finishes that, should the first die half-way).

The feeder (``campaigns.feeder``): pace, windows and the messaging limit
-------------------------------------------------------------------------
One pass per campaign, about once a second while it runs (a ``campaigns.feed`` task on the
tenant's bulk queue that schedules its own next pass; a beat job rings any campaign whose next
pass is overdue — a safety net, never the normal path). A pass:

1. **Pace.** The campaign may have at most ``rate * WAYPOST_CAMPAIGN_LEAD_SECONDS`` messages
   released and not yet submitted, ``rate`` being the campaign's own ``messages_per_second`` or
   ``WAYPOST_CAMPAIGN_SHARE`` of its sender's (default 80 %): the rest of the sender's rate, and
   a queue that never holds more than a second of campaign work, are the transactional traffic's
   room. An OTP sent during a 100,000-message campaign is claimed behind at most one lead's
   worth of campaign messages, never behind the audience.
2. **Window.** A row is released only while its recipient's local time (``windows``: the
   number's time zone; the tenant's for a BSUID) is inside the campaign's send window. Rows
   outside wait for the next opening; the pass schedules itself for the earliest one.
3. **Limit.** Meta counts, per business portfolio, the unique users reached outside a
   customer-service window in a moving 24 hours (``tenants.PortfolioLimit``,
   ``messaging.selectors.portfolio_reach``). A pass releases at most what is left — the limit,
   less the users reached, less the portfolio's template messages waiting or being submitted —
   holding the portfolio's row lock, so two campaigns of one portfolio never spend the same
   room. When nothing is left, the campaign is **held at the limit** (``held_reason``, visible
   in the API and admin) and looks again as the window moves, or at once when a new limit is
   learned — never sent into errors. A sender blocked or disabled, or a template Meta has
   paused, holds it the same way (``HeldReason``).
4. **Release.** The chosen rows become messages through the same intake as the API's
   (``messaging.send.intake.message_create_batch``), each with the idempotency key
   ``campaign:<campaign id>:<row>`` — a pass that crashes and runs again creates nothing twice.
   A row the intake refuses now fails alone (``failed``, with the intake's code); the campaign
   goes on. Each message keeps the campaign's window (a retry waits for it too) and expires
   ``ttl_seconds`` after the campaign began sending.
"""
