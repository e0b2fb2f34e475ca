"""Where a send names Waypost media (``media.references``): found at any depth, replaced by the
provider's id in a copy, nothing else touched."""

from media.references import references, substituted


def card(media: dict) -> dict:
    return {
        "card_index": 0,
        "components": [{"type": "header", "parameters": [{"type": "video", "video": media}]}],
    }


COMPONENTS = [
    {"type": "header", "parameters": [{"type": "image", "image": {"media_id": "a"}}]},
    {"type": "body", "parameters": [{"type": "text", "text": "media_id"}]},
    {"type": "carousel", "cards": [card({"media_id": "b"}), card({"id": "123"})]},
]


def test_every_media_parameter_naming_waypost_media_is_found_with_its_path():
    found = [(r.type, r.media_id, r.path) for r in references(COMPONENTS)]
    assert found == [
        ("image", "a", "[0].parameters[0].image"),
        ("video", "b", "[2].cards[0].components[0].parameters[0].video"),
    ]


def test_a_parameter_of_another_type_or_a_provider_id_is_not_a_reference():
    odd = [{"type": "location", "location": {"media_id": "x"}}, {"type": "image", "image": "x"}]
    assert list(references(odd)) == []
    assert list(references({"image": {"media_id": "no type"}})) == []


def test_substitution_replaces_in_a_copy_and_keeps_the_other_keys():
    components = [
        {
            "type": "header",
            "parameters": [
                {"type": "document", "document": {"media_id": "a", "filename": "x.pdf"}}
            ],
        }
    ]
    out = substituted(components, {"a": "999"})
    assert out[0]["parameters"][0]["document"] == {"id": "999", "filename": "x.pdf"}
    assert components[0]["parameters"][0]["document"] == {"media_id": "a", "filename": "x.pdf"}
    nested = substituted(COMPONENTS, {"a": "1", "b": "2"})
    assert nested[2]["cards"][0]["components"][0]["parameters"][0]["video"] == {"id": "2"}
    assert nested[2]["cards"][1] == COMPONENTS[2]["cards"][1]
    assert nested[1] == COMPONENTS[1]
