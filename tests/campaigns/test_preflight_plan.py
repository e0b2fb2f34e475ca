"""The preflight's checks stay set-based as the audience grows: each is one pass over the
campaign's rows, whatever the number of rows it marks (issue 20: a 100,000-row import and
preflight in 60 s, measured by bench/campaigns.py on the deployed stack)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from campaigns.models import CampaignRow, RowOutcome

from ..factories import MessageTemplateFactory

URL = "/api/v1/campaigns"


@pytest.fixture
def template(tenant_a):
    return MessageTemplateFactory(tenant=tenant_a.tenant)


def row(to: str) -> dict:
    return {"to": to, "header.1": "A-1", "1": "Ana", "2": "A-1"}


def test_duplicates_are_marked_in_one_pass_naming_each_first_row(api, template):
    a, b, c = "+4915100000001", "+4915100000002", "+4915100000003"
    audience = [row(to) for to in (a, b, a, c, b, a, c)]  # rows 3 and 6 repeat 1; 5: 2; 7: 4
    with CaptureQueriesContext(connection) as queries:
        response = api.post(
            URL,
            {"template": {"name": template.name, "language": template.language}}
            | {"audience": audience},
            format="json",
            HTTP_IDEMPOTENCY_KEY="dup",
        )
    assert response.status_code == 201, response.json()
    marked = CampaignRow.objects.filter(error_code="duplicate_recipient").order_by("number")
    assert [(r.number, r.outcome, r.error_message) for r in marked] == [
        (3, RowOutcome.INVALID, "The same recipient as row 1."),
        (5, RowOutcome.INVALID, "The same recipient as row 2."),
        (6, RowOutcome.INVALID, "The same recipient as row 1."),
        (7, RowOutcome.INVALID, "The same recipient as row 4."),
    ]
    # The statement computes the window once and joins it to the rows it marks: no subquery
    # run again per marked row (which sorted the whole audience once per duplicate).
    [statement] = [
        q["sql"] for q in queries if "duplicate_recipient" in q["sql"] and " OVER " in q["sql"]
    ]
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + statement)  # not executed: EXPLAIN without ANALYZE
        plan = "\n".join(line for (line,) in cursor.fetchall())
    assert "SubPlan" not in plan, plan
    assert plan.count("WindowAgg") == 1, plan
