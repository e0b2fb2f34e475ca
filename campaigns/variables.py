"""A campaign row's columns → the template's send-time components (pure: no database).

An audience row — a CSV line or a JSON object — names its recipient and fills in the
template's placeholders, one column each. The components built here are Meta's send format
(docs/meta-api.md §1.2), the same a single message sends in ``template.components``, and go
through the same rules (``templates_registry.rules.check_send``).

Column conventions
------------------
Column names are read without surrounding spaces (or a byte-order mark), in any case.

* ``to`` (or ``phone``): the recipient's phone number, in international format
  (``+4915112345678``).
* ``recipient`` (or ``user_id``): the recipient's business-scoped user id (BSUID,
  ``US.13491208655302741918``), for a user known without a number.
* ``1``, ``2``, …: the body's placeholders ``{{1}}``, ``{{2}}`` … (a positional template).
* ``first_name``, …: the body's placeholder ``{{first_name}}`` (a named template).
* ``body.1``, ``body.first_name``: the same, spelled out; wins over the short name, and is
  needed for a placeholder named like a reserved column (``{{to}}`` → ``body.to``).
* ``header.1`` / ``header.<name>``: the text header's placeholder.
* ``header.image``, ``header.video``, ``header.document``: the media header, as an
  ``http(s)://`` URL Meta fetches, or ``media:<id>``, a file uploaded to Waypost
  (``POST /api/v1/media``), sent as ``{"media_id": "<id>"}`` for the send path to resolve.
* ``header.filename``: a document header's file name as the recipient sees it (optional).
* ``header.latitude``, ``header.longitude`` (required), ``header.name``, ``header.address``
  (optional): a location header.
* ``button.<index>``: the button at ``<index>`` (from 0, in the template's order) — a URL
  button's suffix, a copy-code button's coupon code (required: the template's example was only
  for its review), a quick-reply button's payload (optional), a flow button's flow token
  (optional), a catalog button's thumbnail product id (optional).
* ``offer.expiration``: a limited-time offer's end when it shows a countdown, as ISO 8601 with
  a time zone (``2026-12-24T18:00:00+01:00``) or Unix milliseconds.
* ``card.<n>.<column>``: card ``<n>`` (from 0) of a carousel, with the columns above:
  ``card.0.header.image``, ``card.0.1``, ``card.0.button.0``.
* ``metadata.<key>``: kept with the message and returned in its callbacks as ``<key>`` (the
  key keeps its case).

An **authentication** template's one-time code is column ``1`` (Meta's body says
``{{1}} is your verification code``); its copy-code / one-tap button carries the same code, so
``button.<index>`` may be given instead, never a different one.

A JSON row may also nest its values: ``{"to": "+49…", "variables": {"1": "Ana"}, "metadata":
{"order": "A-1"}}``. A CSV cell named ``metadata`` may hold a JSON object.

Values are stripped of surrounding whitespace and nothing else: a newline inside a value is
for the send rules to refuse (or the tenant's ``sanitize`` policy to repair), as for a single
message. An empty cell is no value: a campaign's default, if any, applies; a required column
with no value is ``MissingVariable``. Columns no template placeholder uses are ignored here
(the importer decides what to say about them).
"""

from __future__ import annotations

import json
import math
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from templates_registry.rules.limits import MEDIA_FORMATS, TemplateCategory
from templates_registry.rules.send import TemplateSpec, template_spec

TO_COLUMNS = ("to", "phone")
RECIPIENT_COLUMNS = ("recipient", "user_id")
METADATA_PREFIX = "metadata."
MEDIA_ID_PREFIX = "media:"
_LINK = re.compile(r"^https?://\S+$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ColumnError(ValueError):
    """A row that cannot be sent as it is; ``column`` names the (first) column at fault and
    ``code`` is the machine-readable reason (the importer reports both per row)."""

    code = "column_invalid"

    def __init__(self, message: str, *, column: str) -> None:
        super().__init__(message)
        self.column = column


class MissingVariable(ColumnError):
    """Required columns without a value: ``columns`` lists every one, ``column`` the first."""

    code = "variable_missing"

    def __init__(self, columns: list[str], needs: list[str]) -> None:
        listed = ", ".join(f"'{c}' ({need})" for c, need in zip(columns, needs, strict=True))
        noun = "a value for column" if len(columns) == 1 else "values for columns"
        super().__init__(f"The template needs {noun} {listed}.", column=columns[0])
        self.columns = columns


class InvalidColumn(ColumnError):
    """A column whose value cannot be used (a media header that is neither a URL nor a Waypost
    media id, two columns saying different things)."""

    code = "column_invalid"


class Row(NamedTuple):
    """One audience row, split: ``to`` and ``recipient`` ("" when absent), the variables (by
    lower-case column name, empty ones left out) and the metadata."""

    to: str
    recipient: str
    variables: dict[str, str]
    metadata: dict[str, Any]


# --- reading a row -----------------------------------------------------------------------------


def _column_name(key: Any) -> str:
    return str(key).replace("\ufeff", "").strip()


def _cell(value: Any, column: str) -> str:
    """A cell as text: strings stripped, JSON numbers written out; anything else refused."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return str(int(value)) if value.is_integer() else repr(value)
    raise InvalidColumn(
        f"Column '{column}' must hold text or a number, not {type(value).__name__}.",
        column=column,
    )


def _put(target: dict, key: str, value: Any, column: str) -> None:
    """``target[key] = value``, refusing a second, different value for the same key."""
    if key in target and target[key] != value:
        raise InvalidColumn(
            f"Column '{column}' is given twice with different values.", column=column
        )
    target[key] = value


def _json_object(value: Any, column: str) -> dict:
    if isinstance(value, str):
        if not value.strip():
            return {}
        try:
            value = json.loads(value)
        except ValueError:
            value = None
    if not isinstance(value, dict):
        raise InvalidColumn(f"Column '{column}' must hold a JSON object.", column=column)
    return value


def split_row(row: dict[str, Any]) -> Row:
    """A row (a CSV line as a dict, or a JSON object) → ``Row(to, recipient, variables,
    metadata)`` under the column conventions above. Nothing is validated beyond the shape:
    the number, the BSUID and the variables are for the importer and the send rules.

    Raises InvalidColumn when two columns say different things (``to`` and ``phone``, a
    ``variables`` key and the same column), or when a value is not text (a list in a JSON
    row's variable, say).
    """
    to: dict[str, str] = {}
    recipient: dict[str, str] = {}
    variables: dict[str, str] = {}
    metadata: dict[str, Any] = {}
    nested_variables: dict[str, Any] = {}
    for key, value in row.items():
        if key is None or value is None:  # csv.DictReader's extra cells / a JSON null
            continue
        column = _column_name(key)
        name = column.lower()
        if name in TO_COLUMNS or name in RECIPIENT_COLUMNS:
            text = _cell(value, column)
            if text:
                _put(to if name in TO_COLUMNS else recipient, "value", text, column)
        elif name == "metadata":
            for meta_key, meta_value in _json_object(value, column).items():
                _put(metadata, str(meta_key), meta_value, f"metadata.{meta_key}")
        elif name == "variables":
            nested_variables.update(_json_object(value, column))
        elif name.startswith(METADATA_PREFIX):
            meta_key = column[len(METADATA_PREFIX) :].strip()
            if not meta_key:
                raise InvalidColumn("Column 'metadata.' names no key.", column=column)
            text = _cell(value, column)
            if text:
                _put(metadata, meta_key, text, column)
        else:
            text = _cell(value, column)
            if text:
                _put(variables, name, text, column)
    for key, value in nested_variables.items():
        if value is None:
            continue
        column = _column_name(key)
        text = _cell(value, f"variables.{column}")
        if text:
            _put(variables, column.lower(), text, column)
    return Row(to.get("value", ""), recipient.get("value", ""), variables, metadata)


# --- the template's columns --------------------------------------------------------------------


class _Columns:
    """Reads a row's variables for the builder, and remembers each column it was asked for.

    ``strict``: a required column without a value is recorded as missing (raised at the end,
    all at once); otherwise (``columns_for``) nothing is raised and no value is ever found.
    """

    def __init__(self, variables: dict[str, Any], *, strict: bool) -> None:
        self.variables = variables if strict else {}
        self.strict = strict
        self.asked: list[tuple[str, bool]] = []
        self.missing: list[tuple[str, str]] = []

    def get(
        self, column: str, *, needs: str, required: bool, also: tuple[str, ...] = ()
    ) -> str | None:
        """The value of ``column`` — or of the first of ``also`` that has one (the longer
        spellings, which win) — else None."""
        self.asked.append((column, required))
        for key in (*also, column):
            value = self.variables.get(key)
            if value is None:
                continue
            text = _cell(value, key)
            if text:
                return text
        if required and self.strict:
            self.missing.append((column, needs))
        return None


def _text_param(value: str, name: str, spec: TemplateSpec) -> dict:
    param = {"type": "text", "text": value}
    if spec.parameter_format == "NAMED":
        param["parameter_name"] = name
    return param


def _media(value: str, column: str, kind: str) -> dict:
    if value[: len(MEDIA_ID_PREFIX)].lower() == MEDIA_ID_PREFIX:
        ident = value[len(MEDIA_ID_PREFIX) :].strip()
        try:
            return {"media_id": str(uuid.UUID(ident))}
        except ValueError:
            raise InvalidColumn(
                f"Column '{column}': '{MEDIA_ID_PREFIX}' must be followed by a Waypost media id "
                f"(as POST /api/v1/media returns it), not {ident!r}.",
                column=column,
            ) from None
    if _LINK.match(value):
        return {"link": value}
    raise InvalidColumn(
        f"Column '{column}' must hold the {kind}'s http(s) URL or {MEDIA_ID_PREFIX}<Waypost "
        f"media id>, not {value[:60]!r}.",
        column=column,
    )


def _coordinate(value: str, column: str, bound: int) -> float:
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or abs(number) > bound:
        raise InvalidColumn(
            f"Column '{column}' must be a number from -{bound} to {bound}, not {value[:40]!r}.",
            column=column,
        )
    return number


def _expiration_ms(value: str, column: str) -> int:
    if value.isdigit():
        return int(value)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        moment = None
    if moment is None or moment.utcoffset() is None:
        raise InvalidColumn(
            f"Column '{column}' must be a date and time with its time zone "
            f"(2026-12-24T18:00:00+01:00) or Unix milliseconds, not {value[:40]!r}.",
            column=column,
        )
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def _header(spec: TemplateSpec, cols: _Columns, p: str) -> dict | None:
    fmt = spec.header_format
    if fmt in MEDIA_FORMATS:
        kind = fmt.lower()
        column = f"{p}header.{kind}"
        value = cols.get(column, needs=f"the {kind} header", required=True)
        filename = None
        if kind == "document":
            filename = cols.get(f"{p}header.filename", needs="", required=False)
        if value is None:
            return None
        media = _media(value, column, kind)
        if filename:
            media["filename"] = filename
        return {"type": "header", "parameters": [{"type": kind, kind: media}]}
    if fmt == "LOCATION":
        values = {
            key: cols.get(f"{p}header.{key}", needs="the location header", required=required)
            for key, required in (
                ("latitude", True),
                ("longitude", True),
                ("name", False),
                ("address", False),
            )
        }
        if values["latitude"] is None or values["longitude"] is None:
            return None
        location: dict[str, Any] = {
            "latitude": _coordinate(values["latitude"], f"{p}header.latitude", 90),
            "longitude": _coordinate(values["longitude"], f"{p}header.longitude", 180),
        }
        location.update({k: values[k] for k in ("name", "address") if values[k]})
        return {"type": "header", "parameters": [{"type": "location", "location": location}]}
    params = []
    for name in _placeholder_order(spec, spec.header_params):
        value = cols.get(f"{p}header.{name}", needs=f"the header's {{{{{name}}}}}", required=True)
        if value is not None:
            params.append(_text_param(value, name, spec))
    if len(params) != len(spec.header_params) or not params:
        return None
    return {"type": "header", "parameters": params}


def _otp_code(spec: TemplateSpec, cols: _Columns, p: str) -> str | None:
    """An authentication template's code: column ``1`` (``body.1``), or its OTP button's."""
    columns = [f"{p}body.1", f"{p}1"] + [
        f"{p}button.{b.index}" for b in spec.buttons if b.type == "OTP"
    ]
    given = {c: _cell(cols.variables[c], c) for c in columns if c in cols.variables}
    given = {c: v for c, v in given.items() if v}
    if len(set(given.values())) > 1:
        names = ", ".join(f"'{c}'" for c in given)
        raise InvalidColumn(
            f"The one-time code is given twice with different values ({names}): the body and "
            "its button carry the same code.",
            column=next(iter(given)),
        )
    return cols.get(f"{p}1", needs="the one-time code", required=True, also=tuple(given))


def _placeholder_order(spec: TemplateSpec, names: tuple[str, ...]) -> tuple[str, ...]:
    """A positional template's values go in number order (``{{1}}`` first), whatever order the
    text mentions them in; named ones go as the text has them."""
    if spec.parameter_format == "NAMED" or not all(n.isdigit() for n in names):
        return names
    return tuple(sorted(names, key=int))


def _body(spec: TemplateSpec, cols: _Columns, p: str, code: str | None) -> dict | None:
    authentication = spec.category == TemplateCategory.AUTHENTICATION
    params = []
    for name in _placeholder_order(spec, spec.body_params):
        if authentication and name == "1":
            value: str | None = code
        else:
            value = cols.get(
                f"{p}{name}",
                needs=f"the body's {{{{{name}}}}}",
                required=True,
                also=(f"{p}body.{name}",),
            )
        if value is not None:
            params.append(_text_param(value, name, spec))
    if len(params) != len(spec.body_params) or not params:
        return None
    return {"type": "body", "parameters": params}


def _offer(spec: TemplateSpec, cols: _Columns, p: str) -> dict | None:
    if not spec.offer_expires:
        return None
    column = f"{p}offer.expiration"
    value = cols.get(column, needs="the offer's end", required=True)
    if value is None:
        return None
    expires = _expiration_ms(value, column)
    return {
        "type": "limited_time_offer",
        "parameters": [
            {"type": "limited_time_offer", "limited_time_offer": {"expiration_time_ms": expires}}
        ],
    }


def _buttons(spec: TemplateSpec, cols: _Columns, p: str, code: str | None) -> list[dict]:
    out = []
    for button in spec.buttons:
        column = f"{p}button.{button.index}"
        param: dict | None = None
        if button.type == "OTP":
            param = {"type": "text", "text": code} if code is not None else None
        elif button.sub_type == "url" and button.has_variable:
            value = cols.get(column, needs=f"URL button {button.index}'s suffix", required=True)
            param = {"type": "text", "text": value} if value is not None else None
        elif button.sub_type == "copy_code":
            # Meta's coupon: the template's ``example`` was only for its review.
            value = cols.get(column, needs=f"copy-code button {button.index}'s code", required=True)
            param = {"type": "coupon_code", "coupon_code": value} if value is not None else None
        elif button.sub_type == "quick_reply":
            value = cols.get(column, needs="", required=False)
            param = {"type": "payload", "payload": value} if value is not None else None
        elif button.sub_type == "flow":
            value = cols.get(column, needs="", required=False)
            param = {"type": "action", "action": {"flow_token": value}} if value else None
        elif button.sub_type == "catalog":
            value = cols.get(column, needs="", required=False)
            param = (
                {"type": "action", "action": {"thumbnail_product_retailer_id": value}}
                if value
                else None
            )
        if param is not None:
            out.append(
                {
                    "type": "button",
                    "sub_type": button.sub_type,
                    "index": str(button.index),
                    "parameters": [param],
                }
            )
    return out


def _components(spec: TemplateSpec, cols: _Columns, p: str = "") -> list[dict]:
    code = None
    if spec.category == TemplateCategory.AUTHENTICATION:
        code = _otp_code(spec, cols, p)
    components = [
        c
        for c in (_header(spec, cols, p), _body(spec, cols, p, code), _offer(spec, cols, p))
        if c is not None
    ]
    if spec.cards:
        cards = []
        for index, card in enumerate(spec.cards):
            card_spec = template_spec(list(card), parameter_format=spec.parameter_format)
            cards.append(
                {
                    "card_index": index,
                    "components": _components(card_spec, cols, f"{p}card.{index}."),
                }
            )
        components.append({"type": "carousel", "cards": cards})
    return components + _buttons(spec, cols, p, code)


def components_from_variables(
    *,
    template_components: list,
    parameter_format: str,
    category: str,
    variables: dict[str, str],
) -> list[dict]:
    """A row's variables (``split_row``'s, with any campaign defaults merged in) → the
    message's send-time ``components`` for the template (its approved ``components``,
    ``parameter_format`` and ``category``), in Meta's format.

    Raises MissingVariable listing every required column without a value, InvalidColumn for a
    value that cannot be used (a media header that is neither a URL nor ``media:<id>``, an
    offer's end that is not a date). Whether the values suit Meta (length, newlines, a URL
    suffix without spaces) is ``check_send``'s to say, as for a single message.
    """
    spec = template_spec(template_components, parameter_format=parameter_format, category=category)
    cols = _Columns({_column_name(k).lower(): v for k, v in variables.items()}, strict=True)
    components = _components(spec, cols)
    if cols.missing:
        raise MissingVariable([c for c, _ in cols.missing], [n for _, n in cols.missing])
    return components


def columns_for(
    *,
    template_components: list,
    parameter_format: str,
    category: str,
    include_optional: bool = False,
) -> list[str]:
    """The columns a template's rows need, in the template's order (header, body, offer,
    carousel cards, buttons) — with ``include_optional`` also those it can take (a quick-reply
    payload, a document's file name). The recipient's column (``to`` or ``recipient``) is not
    listed: every template needs one."""
    spec = template_spec(template_components, parameter_format=parameter_format, category=category)
    cols = _Columns({}, strict=False)
    _components(spec, cols)
    return list(
        dict.fromkeys(column for column, required in cols.asked if required or include_optional)
    )


__all__ = [
    "ColumnError",
    "InvalidColumn",
    "MissingVariable",
    "Row",
    "columns_for",
    "components_from_variables",
    "split_row",
]
