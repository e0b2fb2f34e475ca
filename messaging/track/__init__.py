"""What happens after: the ledger of a message and everything that reads or answers it.

``ledger`` (events in, state folded from them) · ``inbound`` (provider statuses, replies,
orphans) · ``contacts`` (who the recipient is, opt-outs, the service window) · ``stalls`` (the
next status that did not come) · ``notify`` (client callbacks on state changes) ·
``retention`` (how long a settled ledger is kept). This wing never imports ``messaging.send``
(import-linter enforces it): the way out depends on the record, not the reverse.
"""
