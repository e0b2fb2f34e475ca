"""A local stand-in for Meta's WhatsApp Cloud API (and 360dialog's) that misbehaves on demand.

Layout (no Django anywhere; ``python -m sandbox`` starts it, ``cli`` has its flags):

* ``config``   — every knob, from CLI flags, ``SANDBOX_*`` env vars or ``POST /_sandbox/config``.
* ``wire``     — Meta's wire formats: error table and bodies, send response, webhook envelopes.
* ``checks``   — what Meta checks on a send (envelope, template, parameters), independently of
                 Waypost's own rules so the two can disagree and tests would notice.
* ``state``    — in-memory ground truth: templates per WABA, numbers, accepted messages,
                 rate limiters (per-number mps, per-recipient pair limit), counters.
* ``limits``   — business portfolios and Meta's messaging limit (unique users outside a
                 service window in a moving 24 hours).
* ``media``    — uploaded media (30-day ids) and Meta's media endpoints.
* ``accounts`` — the account side on demand: limits, quality, alerts, the spam limit, and
                 the fields of ``GET /{phone-number-id}``.
* ``webhooks`` — the dispatcher: schedules status/template/inbound webhooks, batches, signs,
                 duplicates, reorders, drops, retries with backoff.
* ``server``   — the aiohttp application and its routes.
"""
