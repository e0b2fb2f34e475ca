"""A campaign's audience: imported row by row, streamed, and preflighted.

**Import** reads a CSV file (any size up to ``WAYPOST_CAMPAIGN_MAX_ROWS`` rows; read from the
upload's temporary file, never held whole in memory) or a list of JSON rows, and stores one
``CampaignRow`` per row, in chunks of :data:`CHUNK` (one INSERT each, no per-row round trip).
Each row is checked on its way in by the rules a single message gets at the API
(``messaging.send.inputs``: the recipient; ``templates_registry``: the parameters against the
approved template, the tenant's formatting policy) and its variables are frozen.

**Preflight** then adds what needs the whole audience or the database, as set-based statements:
duplicate recipients (the first row stays valid), suppressed recipients, users who stopped
marketing messages (marketing templates only), and the audience's size against the messaging
limit left today (a warning in the report: a campaign beyond it is held at the limit, never sent
into errors). The report: counts by outcome and by error code, and the invalid rows.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from django.db.models import Count, Exists, OuterRef
from django.db.models.functions import Substr
from django.utils import timezone
from rest_framework import serializers

from campaigns.models import Campaign, CampaignRow, PreflightStatus, RowOutcome
from campaigns.variables import ColumnError, columns_for, components_from_variables, split_row
from core.errors import PayloadTooLarge, ValidationFailed, WaypostError
from media.references import references
from media.services import media_check_components
from messaging.models import Contact, Suppression
from messaging.selectors import portfolio_reach
from messaging.send.inputs import METADATA_MAX_BYTES, normalise_recipient, normalise_user_id
from messaging.send.windows import SendWindow, time_zones_for, zones_from_key, zones_key
from templates_registry.rules.limits import TemplateCategory
from templates_registry.services import template_check_send
from tenants.selectors import portfolio_limit, portfolio_of

CHUNK = 2000
RECIPIENT_COLUMNS = {"to", "phone", "recipient", "user_id"}
INVALID_ROWS_SHOWN = 1000  # in the JSON report; the CSV download has every one


# --- reading -------------------------------------------------------------------------------------


def csv_rows(upload) -> Iterator[dict]:
    """The rows of an uploaded CSV file, one dict each, read as they are needed. The header
    names are trimmed and lower-cased; a UTF-8 byte-order mark is skipped. A file larger than
    ``WAYPOST_CAMPAIGN_MAX_UPLOAD_BYTES`` (however it came: the API's parser refuses it from
    its Content-Length already; the admin's form here), or a NUL character (PostgreSQL
    cannot store one), is refused."""
    limit = settings.WAYPOST_CAMPAIGN_MAX_UPLOAD_BYTES
    if getattr(upload, "size", 0) > limit:
        raise PayloadTooLarge(
            f"The audience file is {upload.size} bytes; at most {limit} "
            "(WAYPOST_CAMPAIGN_MAX_UPLOAD_BYTES).",
            code="audience_too_large",
            details=[{"field": "audience", "code": "too_large", "max_bytes": limit}],
        )
    upload.seek(0)
    text = io.TextIOWrapper(upload, encoding="utf-8-sig", newline="")
    try:
        reader = csv.reader(text)
        try:
            header = [name.strip().lower() for name in next(reader)]
        except StopIteration:
            return
        if not RECIPIENT_COLUMNS & set(header):
            raise ValidationFailed(
                "The audience needs a 'to' column (phone numbers) or a 'recipient' column "
                "(BSUIDs).",
                code="audience_columns_missing",
                details=[{"field": "audience", "code": "columns_missing", "columns": header}],
            )
        for values in reader:
            if not any(v.strip() for v in values):
                continue  # a blank line is not a row
            if any("\x00" in v for v in values):
                raise ValidationFailed(
                    f"Line {reader.line_num} of the audience file holds a NUL character.",
                    code="audience_unreadable",
                    details=[{"field": "audience", "code": "nul", "line": reader.line_num}],
                )
            yield dict(zip(header, values, strict=False))
    except UnicodeDecodeError as exc:
        raise ValidationFailed(
            "The audience file is not UTF-8 text.", code="audience_unreadable"
        ) from exc
    except csv.Error as exc:
        raise ValidationFailed(
            f"The audience file is not valid CSV: {exc}.", code="audience_unreadable"
        ) from exc
    finally:
        text.detach()


def file_digest(upload) -> str:
    """SHA-256 of the upload, read in blocks (part of the campaign's request hash)."""
    upload.seek(0)
    digest = hashlib.sha256()
    for block in iter(lambda: upload.read(1 << 16), b""):
        digest.update(block)
    upload.seek(0)
    return digest.hexdigest()


def json_rows(rows: list) -> Iterator[dict]:
    for index, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            raise ValidationFailed(
                f"Audience row {index} is not an object.",
                code="audience_row_invalid",
                details=[{"field": f"audience[{index - 1}]", "code": "not_an_object"}],
            )
        yield row


def campaign_window(campaign: Campaign) -> SendWindow | None:
    """The campaign's send window (None: it may send at any hour)."""
    if campaign.window_start is None and campaign.window_end is None and not campaign.window_days:
        return None
    return SendWindow.from_fields(
        start=campaign.window_start, end=campaign.window_end, days=campaign.window_days
    )


# --- import --------------------------------------------------------------------------------------


@dataclass
class _Checker:
    """The per-row checks, with what they need looked up once."""

    campaign: Campaign

    def __post_init__(self) -> None:
        template = self.campaign.template
        self.template = template
        self.policy = self.campaign.tenant.param_policy
        self.default_zone = getattr(self.campaign.tenant, "time_zone", "") or "UTC"
        self.defaults = {str(k): str(v) for k, v in (self.campaign.defaults or {}).items()}
        self.media_checked: dict[tuple, WaypostError | None] = {}
        self.window = campaign_window(self.campaign)
        self.window_opens: dict[str, bool] = {}

    def row(self, number: int, raw: dict) -> CampaignRow:
        row = CampaignRow(campaign=self.campaign, number=number)
        try:
            to, user_id, variables, metadata = split_row(raw)
            row.raw_recipient = (to or user_id)[:200]
            row.variables = {**self.defaults, **variables}
            row.metadata = metadata
            self._recipient(row, to, user_id)
            self._metadata(metadata)
            components = components_from_variables(
                template_components=self.template.components,
                parameter_format=self.template.parameter_format,
                category=self.template.category,
                variables=row.variables,
            )
            template_check_send(template=self.template, components=components, policy=self.policy)
            self._media(components)
        except ColumnError as exc:
            return _invalid(row, exc.code, str(exc))
        except WaypostError as exc:
            return _invalid(row, exc.code, exc.message)
        except (TypeError, ValueError) as exc:
            return _invalid(row, "audience_row_invalid", str(exc))
        row.time_zones = zones_key(
            time_zones_for(
                recipient=row.recipient, user_id=row.recipient_user_id, default=self.default_zone
            )
        )
        if not self._window_opens(row.time_zones):
            return _invalid(
                row,
                "send_window_never_open",
                "The campaign's send window never opens for this recipient: its time zones "
                f"({row.time_zones}) share no hour of it.",
            )
        return row

    def _recipient(self, row: CampaignRow, to: str, user_id: str) -> None:
        if to and user_id:
            raise ValidationFailed(
                "Give 'to' or 'recipient', not both.", code="recipient_ambiguous"
            )
        if not to and not user_id:
            raise ValidationFailed("The row has no recipient.", code="recipient_missing")
        try:
            if to:
                row.recipient = normalise_recipient(to)
            else:
                row.recipient_user_id = normalise_user_id(user_id)
        except serializers.ValidationError as exc:
            raise ValidationFailed(str(exc.detail[0]), code="recipient_invalid") from exc
        if row.recipient_user_id and self.template.needs_phone_number:
            raise ValidationFailed(
                "This template sends a code: Meta sends those to phone numbers only (error "
                "131062 otherwise).",
                code="recipient_needs_phone_number",
            )

    def _media(self, components: list) -> None:
        """Waypost media named in the row must be the tenant's (``media_not_found`` at once,
        as a single message gets it): checked once per distinct set of media ids."""
        key = tuple(sorted((r.media_id, r.type) for r in references(components)))
        if not key:
            return
        if key not in self.media_checked:
            try:
                media_check_components(tenant=self.campaign.tenant, components=components)
                self.media_checked[key] = None
            except WaypostError as exc:
                self.media_checked[key] = exc
        if self.media_checked[key] is not None:
            raise self.media_checked[key]

    def _window_opens(self, zones: str) -> bool:
        """Whether the campaign's window opens within a week for these zones (once per key)."""
        if self.window is None:
            return True
        if zones not in self.window_opens:
            opens = self.window.next_open(timezone.now(), zones_from_key(zones))
            self.window_opens[zones] = opens is not None
        return self.window_opens[zones]

    @staticmethod
    def _metadata(metadata: dict) -> None:
        size = len(json.dumps(metadata, separators=(",", ":"), ensure_ascii=False).encode())
        if size > METADATA_MAX_BYTES:
            raise ValidationFailed(
                f"The row's metadata is {size} bytes as JSON; the limit is {METADATA_MAX_BYTES}.",
                code="metadata_too_large",
            )


def _invalid(row: CampaignRow, code: str, message: str) -> CampaignRow:
    row.outcome, row.error_code, row.error_message = RowOutcome.INVALID, code, message[:500]
    return row


def audience_import(*, campaign: Campaign, rows: Iterable[dict]) -> tuple[int, set[str]]:
    """Store and check every row (see the module docstring); returns how many, and the
    columns the audience used. Inside the caller's transaction: an audience that cannot be
    read leaves nothing behind."""
    limit = settings.WAYPOST_CAMPAIGN_MAX_ROWS
    checker = _Checker(campaign)
    chunk: list[CampaignRow] = []
    count = 0
    seen: set[str] = set()
    for count, raw in enumerate(rows, start=1):
        if len(seen) < 200:  # a JSON row may nest its values: the CSV's columns are one set
            seen.update(str(key).strip().lower() for key in raw)
        if count > limit:
            raise ValidationFailed(
                f"The audience has more than {limit} rows (WAYPOST_CAMPAIGN_MAX_ROWS): split it "
                "into several campaigns.",
                code="audience_too_large",
            )
        chunk.append(checker.row(count, raw))
        if len(chunk) >= CHUNK:
            CampaignRow.objects.bulk_create(chunk)
            chunk = []
    if chunk:
        CampaignRow.objects.bulk_create(chunk)
    if count == 0:
        raise ValidationFailed("The audience has no rows.", code="audience_empty")
    return count, seen


def columns_outlook(campaign: Campaign, seen: set[str]) -> dict:
    """The columns the template needs and takes, and those of the audience it does not use —
    a misspelt column is a warning here, not a surprise in the sent message."""
    template = campaign.template
    spec = {
        "template_components": template.components,
        "parameter_format": template.parameter_format,
        "category": template.category,
    }
    required = columns_for(**spec)
    accepted = set(columns_for(**spec, include_optional=True)) | {
        f"body.{column}" for column in required if "." not in column
    }
    known = accepted | RECIPIENT_COLUMNS | {"metadata", "variables"}
    unused = sorted(
        column for column in seen if column not in known and not column.startswith("metadata.")
    )
    return {"required": required, "optional": sorted(accepted - set(required)), "unused": unused}


# --- preflight -----------------------------------------------------------------------------------


def _mark_duplicates(campaign: Campaign) -> None:
    """Every row after the first with the same recipient: invalid, naming that first row. One
    statement, one pass of a window function over the campaign's pending rows, joined to the
    rows it marks (``UPDATE … FROM``: PostgreSQL, and SQLite since 3.33). A subquery per marked
    row would sort the whole audience once per duplicate: 56 s of a 100,000-row preflight with
    500 duplicates (bench/RESULTS.md, "Campaigns")."""
    table = CampaignRow._meta.db_table
    campaign_id = CampaignRow._meta.get_field("campaign").get_db_prep_value(campaign.pk, connection)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {table} SET outcome = %s, error_code = %s,
                error_message = 'The same recipient as row ' || CAST(d.first AS TEXT) || '.'
            FROM (
                SELECT id, ROW_NUMBER() OVER w AS n, MIN(number) OVER w AS first
                FROM {table} WHERE campaign_id = %s AND outcome = %s
                WINDOW w AS (PARTITION BY recipient, recipient_user_id ORDER BY number)
            ) d
            WHERE {table}.id = d.id AND d.n > 1
            """,  # noqa: S608 — the table name is the model's own; values are parameters
            [RowOutcome.INVALID, "duplicate_recipient", campaign_id, RowOutcome.PENDING],
        )


def _mark_refused(campaign: Campaign) -> None:
    """Suppressed recipients, and — for a marketing template — users who stopped marketing
    messages: what the pipeline would refuse at send time, said before."""
    pending = CampaignRow.objects.filter(campaign=campaign, outcome=RowOutcome.PENDING)
    tenant_id = campaign.tenant_id
    by_number = Suppression.objects.filter(tenant_id=tenant_id, recipient=OuterRef("recipient"))
    by_user = Suppression.objects.filter(tenant_id=tenant_id, user_id=OuterRef("recipient_user_id"))
    pending.exclude(recipient="").filter(Exists(by_number)).update(
        outcome=RowOutcome.INVALID,
        error_code="recipient_suppressed",
        error_message="The recipient opted out (a suppression of this tenant).",
    )
    pending.exclude(recipient_user_id="").filter(Exists(by_user)).update(
        outcome=RowOutcome.INVALID,
        error_code="recipient_suppressed",
        error_message="The recipient opted out (a suppression of this tenant).",
    )
    if campaign.template.category != TemplateCategory.MARKETING:
        return
    stopped = Contact.objects.filter(tenant_id=tenant_id, marketing_stopped_at__isnull=False)
    # The contact's wa_id is the number without its "+": compared that way, its index serves.
    by_number = stopped.filter(wa_id=Substr(OuterRef("recipient"), 2))
    by_user = stopped.filter(user_id=OuterRef("recipient_user_id"))
    message = "The user asked to stop marketing messages (Meta would refuse: 131050)."
    for field, query in (("recipient", by_number), ("recipient_user_id", by_user)):
        pending.exclude(**{field: ""}).filter(Exists(query)).update(
            outcome=RowOutcome.INVALID, error_code="marketing_stopped", error_message=message
        )


def limit_outlook(campaign: Campaign, recipients: int) -> dict:
    """The audience against the business portfolio's messaging limit left now."""
    business_id = portfolio_of(campaign.sender)
    limit = portfolio_limit(tenant=campaign.tenant, business_id=business_id)
    reached = portfolio_reach(tenant=campaign.tenant, business_id=business_id)
    if limit is None or limit < 0:
        return {
            "limit": "unlimited" if limit is not None else None,
            "reached_24h": reached,
            "remaining": None,
            "recipients": recipients,
            "fits": True,
        }
    remaining = max(0, limit - reached)
    return {
        "limit": limit,
        "reached_24h": reached,
        "remaining": remaining,
        "recipients": recipients,
        "fits": recipients <= remaining,
    }


def preflight(*, campaign: Campaign, columns: set[str] = frozenset()) -> dict:
    """The set-based checks, then the report, stored on the campaign (and returned).
    ``columns``: those the audience used (``audience_import``)."""
    _mark_duplicates(campaign)
    _mark_refused(campaign)
    outcomes = dict(
        CampaignRow.objects.filter(campaign=campaign).values_list("outcome").annotate(n=Count("id"))
    )
    errors = dict(
        CampaignRow.objects.filter(campaign=campaign, outcome=RowOutcome.INVALID)
        .values_list("error_code")
        .annotate(n=Count("id"))
        .order_by("-n")
    )
    invalid = outcomes.get(RowOutcome.INVALID, 0)
    valid = outcomes.get(RowOutcome.PENDING, 0)
    limit = limit_outlook(campaign, valid)
    outlook = columns_outlook(campaign, set(columns))
    warnings = []
    if not limit["fits"]:
        warnings.append(
            {
                "code": "beyond_messaging_limit",
                "message": f"{valid} recipients, {limit['remaining']} left of the portfolio's "
                "messaging limit today: the rest is held at the limit until the 24-hour window "
                "moves.",
            }
        )
    if outlook["unused"]:
        warnings.append(
            {
                "code": "columns_unused",
                "message": "The template uses none of these columns: "
                f"{', '.join(outlook['unused'])} (it takes {', '.join(outlook['required'])}).",
            }
        )
    report = {
        "rows": campaign.rows_total,
        "valid": valid,
        "invalid": invalid,
        "errors": errors,
        "messaging_limit": limit,
        "columns": outlook,
        "warnings": warnings,
    }
    campaign.rows_invalid = invalid
    campaign.preflight = report
    campaign.preflight_status = PreflightStatus.PASSED if invalid == 0 else PreflightStatus.FAILED
    campaign.save(update_fields=["rows_invalid", "preflight", "preflight_status"])
    return report
