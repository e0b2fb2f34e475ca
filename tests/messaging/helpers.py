"""Shared request bodies for the message tests (the factory template: header {{1}}, body
{{1}} {{2}})."""


def components(name="Ana", order="A-1"):
    return [
        {"type": "header", "parameters": [{"type": "text", "text": order}]},
        {
            "type": "body",
            "parameters": [{"type": "text", "text": name}, {"type": "text", "text": order}],
        },
    ]


def body(template, to="+4915112345678", **kw):
    return {
        "to": to,
        "template": {
            "name": template.name,
            "language": template.language,
            "components": kw.pop("components", components()),
        },
        "metadata": kw.pop("metadata", {"order": "A-1"}),
        **kw,
    }
