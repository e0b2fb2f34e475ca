"""An optional read replica (``DATABASE_REPLICA_URL``, ``core.replica``): the Procfile stack with
a real streaming standby of its PostgreSQL. The admin's lists, the operations page and the
pricing report read the standby; sending, the API, signing in and an object's own page read the
primary. With the standby's replay paused, messages sent meanwhile are accepted and shown on
their own pages, while the lists show the standby's past until replay resumes."""

import os

import pytest
import requests

from core.ids import short
from devtools.replica import Standby
from devtools.stack import TEMPLATE, Stack

from .waiting import wait_for

pytestmark = pytest.mark.system

PASSWORD = "replica-admin-pw"
LIST = "/admin/messaging/message/"


class Admin(requests.Session):
    """The admin over plain HTTP as if behind the TLS proxy production expects: the
    ``X-Forwarded-Proto`` production trusts, and the ``Secure`` cookies sent back by hand."""

    def request(self, method, url, **kwargs):
        cookies = "; ".join(f"{c.name}={c.value}" for c in self.cookies)
        kwargs["headers"] = {
            "X-Forwarded-Proto": "https",
            "Referer": url.replace("http://", "https://"),
            **({"Cookie": cookies} if cookies else {}),
            **kwargs.get("headers", {}),
        }
        kwargs.setdefault("timeout", 10)
        kwargs.setdefault("allow_redirects", False)  # a redirect would not carry the cookies
        return super().request(method, url, **kwargs)


def signed_in(url: str) -> Admin:
    session = Admin()
    session.get(f"{url}/admin/login/")
    answer = session.post(
        f"{url}/admin/login/?next=/admin/",
        data={
            "username": "oncall",
            "password": PASSWORD,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
            "next": "/admin/",
        },
    )
    assert answer.status_code == 302 and answer.headers["Location"] == "/admin/", answer.text[:300]
    assert "Log out" in session.get(f"{url}/admin/").text
    return session


def test_on_call_pages_read_the_replica_and_sending_never_does(tmp_path):
    with Standby(os.environ["DATABASE_URL"]) as standby:
        stack = Stack(
            database="waypost_replica",
            env={
                "DATABASE_REPLICA_URL": standby.url("waypost_replica"),
                "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
                "CELERY_IMPORTS": "",
                "SANDBOX_WEBHOOK_DROP_RATE": "1",  # statuses off: acceptance is enough here
                "DJANGO_SUPERUSER_PASSWORD": PASSWORD,
            },
        )
        with stack:
            stack.manage(
                "createsuperuser", "--noinput", "--username", "oncall", "--email", "o@x.test"
            )
            tenant = stack.create_tenant("replicated")
            stack.start()
            api = stack.client(tenant["api_key"])
            template = api.post(f"{stack.url}/api/v1/templates", json=TEMPLATE, timeout=10)
            assert template.json()["status"] == "APPROVED", template.text

            def state(message_id: str) -> str:
                return api.get(f"{stack.url}/api/v1/messages/{message_id}", timeout=10).json()[
                    "state"
                ]

            before = stack.send_singles(api, "before-", 3)
            wait_for(
                lambda: all(state(m) == "accepted" for m in before),
                30,
                "accepted",
                describe=lambda: ([state(m) for m in before], "\n".join(list(stack.log)[-60:])),
            )
            standby.wait_caught_up()

            standby.pause()
            during = stack.send_singles(
                api, "during-", 3
            )  # the primary takes them: sending never reads the standby
            wait_for(lambda: all(state(m) == "accepted" for m in during), 30, "accepted, paused")
            admin = signed_in(stack.url)  # the session is written and read on the primary
            listed = admin.get(f"{stack.url}{LIST}", timeout=10).text
            assert all(short(m) in listed for m in before)
            assert not any(short(m) in listed for m in during)  # the standby's past
            page = admin.get(f"{stack.url}{LIST}{during[0]}/change/", timeout=10)
            assert page.status_code == 200 and short(during[0]) in page.text  # the primary
            operations = admin.get(f"{stack.url}/admin/operations/", timeout=10)
            assert operations.status_code == 200
            report = api.get(f"{stack.url}/api/v1/reports/pricing", timeout=10)
            assert report.status_code == 200, report.text
            with pytest.raises(Exception, match="read-only"):  # it is a standby indeed
                standby.query("waypost_replica", "CREATE TABLE nope (id int)")

            standby.resume()
            wait_for(
                lambda: all(
                    short(m) in admin.get(f"{stack.url}{LIST}", timeout=10).text for m in during
                ),
                30,
                "the list up to date once replay resumes",
            )
