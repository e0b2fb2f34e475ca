"""A ``sentinel://`` URL (Celery's form: one per sentinel, joined by ``;``) read as Celery reads
it: the credentials are Redis's, percent-decoded; the sentinels' own password is a setting."""

from core.coordination import REDIS_TIMEOUTS, _sentinel_primary


def test_a_sentinel_url_names_every_sentinel_the_primary_and_its_credentials(settings):
    settings.REDIS_SENTINEL_MASTER = "waypost-main"
    settings.REDIS_SENTINEL_PASSWORD = "s3ntinel"
    client = _sentinel_primary("sentinel://app:p%40ss%3Aw@10.0.0.1:26379/2;sentinel://10.0.0.2/2")
    pool = client.connection_pool
    assert pool.service_name == "waypost-main"
    kwargs = pool.connection_kwargs
    assert (kwargs["username"], kwargs["password"], kwargs["db"]) == ("app", "p@ss:w", 2)
    assert kwargs["socket_timeout"] == REDIS_TIMEOUTS["socket_timeout"]
    sentinels = pool.sentinel_manager.sentinels
    addresses = [
        (s.connection_pool.connection_kwargs["host"], s.connection_pool.connection_kwargs["port"])
        for s in sentinels
    ]
    assert addresses == [("10.0.0.1", 26379), ("10.0.0.2", 26379)]
    assert all(s.connection_pool.connection_kwargs["password"] == "s3ntinel" for s in sentinels)
