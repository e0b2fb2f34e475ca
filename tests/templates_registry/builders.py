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


# --- kinds of templates (limited-time offers, carousels, authentication) -----------------------


def lto(text="Expiring offer!", has_expiration=True):
    return {
        "type": "LIMITED_TIME_OFFER",
        "limited_time_offer": {"text": text, "has_expiration": has_expiration},
    }


def card(fmt="IMAGE", body_text="Rare succulent, {{1}} only", *card_buttons):
    components = [{"type": "HEADER", "format": fmt}, {"type": "BODY", "text": body_text}]
    if card_buttons:
        components.append({"type": "BUTTONS", "buttons": list(card_buttons)})
    return {"components": components}


def carousel(*cards):
    return {"type": "CAROUSEL", "cards": list(cards)}


def request_contact_info():
    return {"type": "REQUEST_CONTACT_INFO"}


def otp(otp_type="COPY_CODE"):
    return {"type": "OTP", "otp_type": otp_type}


def send_offer(expiration_time_ms=1_900_000_000_000):
    return {
        "type": "limited_time_offer",
        "parameters": [
            {
                "type": "limited_time_offer",
                "limited_time_offer": {"expiration_time_ms": expiration_time_ms},
            }
        ],
    }


def send_card(index, price="$9", media=None, *extra):
    media = media or {"type": "image", "image": {"link": "https://example.com/a.png"}}
    return {
        "card_index": index,
        "components": [
            send_header(media),
            send_body(text(price)),
            *extra,
        ],
    }


def send_carousel(*cards):
    return {"type": "carousel", "cards": list(cards)}
