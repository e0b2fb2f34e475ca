"""What the ledger keeps of a submit's answer (``SubmitResult.as_detail``), and what is read back
from it."""

import dataclasses

from whatsapp import SubmitOutcome, SubmitResult


def test_a_submit_answer_is_stored_with_every_field():
    answer = SubmitResult(SubmitOutcome.RESPONSE, 200, {"messages": [{"id": "wamid.1"}]}, "", 12)
    detail = answer.as_detail()
    assert set(detail) == {f.name for f in dataclasses.fields(SubmitResult)}
    assert detail["outcome"] == "response" and detail["elapsed_ms"] == 12
    assert SubmitResult.from_detail(detail) == dataclasses.replace(answer, elapsed_ms=0)
