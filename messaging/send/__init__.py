"""The way out: a request becomes a message, and the message goes to the provider.

``intake`` (the API's creates and cancels, checked by ``inputs``) → ``dispatch`` (the database
says what is due; the broker only nudges) → ``pipeline`` (a drain: validate, transform, submit,
check acceptance) — with ``requeue`` (a new round, resuming a sender) and ``faults`` (the crash
points the resilience tests inject). The send wing records what happened through the track wing
(``messaging.track.ledger``); the track wing never imports it.
"""
