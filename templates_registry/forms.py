"""The admin's template form: Meta's components as separate fields.

Business users edit the header, body, footer and buttons as fields of their own; the form
assembles Meta's component JSON and runs the definition rules, and every violation is shown
beside the field it concerns (not in one blob at the top of the page).
"""

from __future__ import annotations

import copy
import json

from django import forms

from core.errors import WaypostError
from templates_registry import rules
from templates_registry.models import MessageTemplate
from templates_registry.services import template_check_editable

HEADER_FORMAT_CHOICES = [("", "No header")] + [(f, f.title()) for f in rules.HEADER_FORMATS]

# rules.Violation.component (and parameter) -> the form field it belongs beside.
_TEMPLATE_FIELDS = {"name", "language", "category", "parameter_format"}


def _field_for(violation: rules.Violation) -> str | None:
    component = violation.component or ""
    if component == "template":
        return violation.parameter if violation.parameter in _TEMPLATE_FIELDS else None
    if component == "header":
        return "header_format" if violation.parameter == "format" else "header_text"
    if component in ("body", "footer"):
        return f"{component}_text"
    if component == "buttons" or component.startswith("button["):
        return "buttons"
    return None


class MessageTemplateForm(forms.ModelForm):
    header_format = forms.ChoiceField(choices=HEADER_FORMAT_CHOICES, required=False)
    header_text = forms.CharField(
        required=False, help_text=f"Up to {rules.HEADER_TEXT_MAX} characters, one variable."
    )
    body_text = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "cols": 80}),
        help_text=f"Up to {rules.BODY_TEXT_MAX:,} characters. Variables: {{{{1}}}} or "
        "{{first_name}}, matching the parameter format.",
    )
    footer_text = forms.CharField(
        required=False, help_text=f"Up to {rules.FOOTER_TEXT_MAX} characters, no variables."
    )
    buttons = forms.JSONField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "cols": 80}),
        help_text='Meta\'s button list, e.g. [{"type": "QUICK_REPLY", "text": "Stop"}, '
        '{"type": "URL", "text": "Track", "url": "https://example.com/t/{{1}}"}]',
    )

    class Meta:
        model = MessageTemplate
        fields = ("tenant", "name", "language", "category", "parameter_format")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        by_type = {c.get("type", "").upper(): c for c in self.instance.components or []}
        header = by_type.get("HEADER")
        if header:
            self.initial["header_format"] = (header.get("format") or "TEXT").upper()
            self.initial["header_text"] = header.get("text", "")
        self.initial["body_text"] = by_type.get("BODY", {}).get("text", "")
        self.initial["footer_text"] = by_type.get("FOOTER", {}).get("text", "")
        if "BUTTONS" in by_type:
            self.initial["buttons"] = by_type["BUTTONS"].get("buttons", [])

    def build_components(self) -> list[dict]:
        """Meta's component JSON from the fields, keeping keys the form does not edit
        (examples, media handles) from the stored components."""
        data = self.cleaned_data
        stored = {c.get("type", "").upper(): c for c in self.instance.components or []}
        components: list[dict] = []

        def keep(ctype: str) -> dict:
            return copy.deepcopy(stored.get(ctype, {})) | {"type": ctype}

        if data.get("header_format"):
            header = keep("HEADER") | {"format": data["header_format"]}
            if data["header_format"] == "TEXT":
                header["text"] = data.get("header_text", "")
            else:
                header.pop("text", None)
            components.append(header)
        components.append(keep("BODY") | {"text": data.get("body_text", "")})
        if data.get("footer_text"):
            components.append(keep("FOOTER") | {"text": data["footer_text"]})
        if data.get("buttons"):
            components.append({"type": "BUTTONS", "buttons": data["buttons"]})
        return components

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        components = self.build_components()
        definition = {
            "name": cleaned.get("name") or self.instance.name,
            "language": cleaned.get("language") or self.instance.language,
            "category": cleaned.get("category") or self.instance.category,
            "parameter_format": cleaned.get("parameter_format") or self.instance.parameter_format,
            "components": components,
        }
        for violation in rules.check_definition(definition):
            field = _field_for(violation)
            message = violation.message
            if violation.component and violation.component.startswith("button["):
                message = f"{violation.component}: {message}"
            if field not in self.fields:
                field = None
            self.add_error(field, forms.ValidationError(message, code=violation.code))
        if self.instance.pk and not self.errors:
            try:  # refused before anything is sent (status, approved category)
                template_check_editable(template=self.instance, category=definition["category"])
            except WaypostError as exc:
                self.add_error(None, forms.ValidationError(exc.message, code=exc.code))
        cleaned["components"] = components
        return cleaned


def pretty_json(value) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)
