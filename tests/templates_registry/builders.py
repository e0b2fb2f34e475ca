"""Small builders for Meta's template JSON, shared by the rule tests."""


def template(
    *components,
    name="order_update",
    language="en_US",
    category="UTILITY",
    parameter_format="POSITIONAL",
):
    return {
        "name": name,
        "language": language,
        "category": category,
        "parameter_format": parameter_format,
        "components": list(components),
    }


def header(text="Order {{1}}"):
    return {"type": "HEADER", "format": "TEXT", "text": text}


def media_header(fmt):
    return {"type": "HEADER", "format": fmt}


def body(text="Hi {{1}}, your order {{2}} has shipped."):
    return {"type": "BODY", "text": text}


def footer(text="Reply STOP to opt out"):
    return {"type": "FOOTER", "text": text}


def buttons(*items):
    return {"type": "BUTTONS", "buttons": list(items)}


def quick_reply(text="Stop"):
    return {"type": "QUICK_REPLY", "text": text}


def url_button(url="https://example.com/track/{{1}}", text="Track"):
    return {"type": "URL", "text": text, "url": url}


def phone_button(number="+15550001111", text="Call us"):
    return {"type": "PHONE_NUMBER", "text": text, "phone_number": number}


def copy_code(example="SAVE25"):
    return {"type": "COPY_CODE", "example": example}


# --- send-time ------------------------------------------------------------------------------


def text(value, name=None):
    param = {"type": "text", "text": value}
    if name:
        param["parameter_name"] = name
    return param


def send_header(*params):
    return {"type": "header", "parameters": list(params)}


def send_body(*params):
    return {"type": "body", "parameters": list(params)}


def send_button(index, sub_type, *params):
    return {"type": "button", "sub_type": sub_type, "index": str(index), "parameters": list(params)}
