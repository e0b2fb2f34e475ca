"""Reads of stored webhook deliveries, for the on-call admin: whose a delivery is, what it
carried, and which deliveries carry a given wamid or number.

A delivery is stored as the bytes that arrived (``WebhookDelivery.body``), before anything is
parsed: who it concerns and what it carried are read from the body by the provider that sent
it (``whatsapp``), never by hand here. A delivery on a sender's own route (360dialog) is that
sender's tenant's, whatever its body says; one on the app-wide route (Meta's) is the tenant of
each number (or, for template and account events, each WABA) it names — usually one, possibly
several.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import BooleanField, F, Func, Q, QuerySet, Value
from django.db.models.fields import BinaryField

from tenants.models import SenderNumber
from webhooks.models import WebhookDelivery
from whatsapp import get_provider, provider_class
from whatsapp.reports import (
    AccountEvent,
    InboundReport,
    ItemError,
    NumberEvent,
    PreferenceReport,
    StatusReport,
    SystemErrorEvent,
    TemplateEvent,
)


class _BytesContain(Func):
    """``haystack`` (a binary column) contains ``needle`` (bytes): ``position`` on PostgreSQL's
    bytea, ``instr`` on SQLite's blob — the body is searched as stored, without decoding it."""

    output_field = BooleanField()
    arity = 2

    def as_sql(self, compiler, connection, **extra_context):
        haystack, needle = (compiler.compile(e) for e in self.source_expressions)
        if connection.vendor == "postgresql":
            return f"(position({needle[0]} in {haystack[0]}) > 0)", (*needle[1], *haystack[1])
        return f"(instr({haystack[0]}, {needle[0]}) > 0)", (*haystack[1], *needle[1])


def _spellings(text: str) -> set[bytes]:
    """``text`` as a JSON body may carry it: as is, and with ``/`` escaped (``\\/``, as some
    encoders write it — a wamid is base64 and may contain ``/``)."""
    inner = json.dumps(text, ensure_ascii=False)[1:-1]
    return {s.encode() for s in (text, inner, inner.replace("/", "\\/"))}


def deliveries_carrying(*, deliveries: QuerySet[WebhookDelivery], text: str) -> QuerySet:
    """The ``deliveries`` whose body contains ``text`` — a wamid, a phone number id, a WABA
    id. A scan of the stored bodies (deliveries are pruned after days, and this is a person's
    search, not a hot path)."""
    match = Q()
    for spelling in _spellings(text):
        match |= Q(_BytesContain(F("body"), Value(spelling, output_field=BinaryField())))
    return deliveries.filter(match)


def deliveries_of_tenant(*, deliveries: QuerySet[WebhookDelivery], tenant) -> QuerySet:
    """The ``deliveries`` that concern ``tenant``: through one of its senders' own routes, or
    naming one of its senders' numbers or WABAs in the body (as a JSON string: Meta's
    ``metadata.phone_number_id`` and ``entry[].id``)."""
    senders = list(
        SenderNumber.objects.filter(tenant=tenant).values_list("pk", "phone_number_id", "waba_id")
    )
    match = Q(sender_id__in=[pk for pk, _, _ in senders])
    named = {i for _, number, waba in senders for i in (number, waba) if i}
    for value in sorted(named):
        needle = Value(f'"{value}"'.encode(), output_field=BinaryField())
        match |= Q(_BytesContain(F("body"), needle))
    return deliveries.filter(match)


def delivery_tenants(*, deliveries: Iterable[WebhookDelivery]) -> dict[int, list[str]]:
    """Delivery id → the slugs of the tenants it concerns (sorted; empty when it names no
    known number). One query for all of them, however many deliveries."""
    rows = list(deliveries)
    named: dict[int, tuple[set[str], set[str]]] = {}
    for row in rows:
        if provider_class(row.provider).per_sender_webhooks:
            continue  # the route decides, not the body
        addresses = get_provider(row.provider).webhook_addresses(bytes(row.body))
        named[row.pk] = addresses or (set(), set())
    numbers = set().union(*(n for _, n in named.values())) if named else set()
    wabas = set().union(*(w for w, _ in named.values())) if named else set()
    senders = list(
        SenderNumber.objects.filter(
            Q(phone_number_id__in=numbers) | Q(waba_id__in=wabas) | Q(pk__in=_route_ids(rows))
        ).values_list("pk", "phone_number_id", "waba_id", "tenant__slug")
    )
    by_pk = {pk: slug for pk, _, _, slug in senders}
    by_number = {number: slug for _, number, _, slug in senders}
    by_waba: dict[str, set[str]] = {}
    for _, _, waba, slug in senders:
        by_waba.setdefault(waba, set()).add(slug)
    tenants: dict[int, list[str]] = {}
    for row in rows:
        if row.pk not in named:
            tenants[row.pk] = [by_pk[row.sender_id]] if row.sender_id in by_pk else []
            continue
        wabas_named, numbers_named = named[row.pk]
        slugs = {by_number[n] for n in numbers_named if n in by_number}
        if not numbers_named:  # template and account events name the WABA only
            slugs = set().union(*(by_waba.get(w, set()) for w in wabas_named))
        tenants[row.pk] = sorted(slugs)
    return tenants


def _route_ids(rows: list[WebhookDelivery]) -> set[int]:
    return {r.sender_id for r in rows if r.sender_id}


@dataclass(frozen=True)
class Carried:
    """One item a delivery carried, as its provider parsed it."""

    kind: str  # status, inbound, preference, template, number, account, error, not understood
    wamid: str = ""
    what: str = ""  # a status (sent, failed…), a message type, an event's name
    number: str = ""  # the phone number id or WABA id it names
    error: str = ""  # a failed status's error code and title, or why an item was not understood


def delivery_carried(*, delivery: WebhookDelivery) -> list[Carried]:
    """What ``delivery`` carried, item by item (parsed again from the stored body: the same
    answer processing got)."""
    parsed = get_provider(delivery.provider).parse_webhook(bytes(delivery.body))
    if parsed.invalid:
        return [Carried("not understood", error=parsed.invalid)]
    return [_carried(event) for event in parsed.events]


def _carried(event) -> Carried:
    if isinstance(event, StatusReport):
        error = " ".join(str(p) for p in (event.error_code or "", event.error_title) if p)
        return Carried("status", event.wamid, event.status, event.phone_number_id, error)
    if isinstance(event, InboundReport):
        return Carried("inbound", event.wamid, event.type, event.phone_number_id)
    if isinstance(event, PreferenceReport):
        what = f"{event.category}: {event.value}"
        return Carried("preference", "", what, event.phone_number_id)
    if isinstance(event, TemplateEvent):
        what = f"{event.name} ({event.language}) {event.kind} {event.event or event.quality}"
        return Carried("template", "", what.strip(), event.waba_id)
    if isinstance(event, NumberEvent):
        return Carried("number", "", f"{event.display_phone_number} {event.event}", event.waba_id)
    if isinstance(event, AccountEvent):
        return Carried("account", "", f"{event.field} {event.event}".strip(), event.waba_id)
    if isinstance(event, SystemErrorEvent):
        error = " ".join(str(p) for p in (event.code or "", event.title) if p)
        return Carried("error", "", "", event.phone_number_id, error)
    if isinstance(event, ItemError):
        return Carried("not understood", error=f"{event.where}: {event.error}")
    return Carried(type(event).__name__)
