"""A `local` run's recorded Locust address is contacted only on this machine's loopback:
the run's document may have been rewritten by any writer of the database (an adversarial
pass pointed one at another host's Locust, and `runs stop` sent it a POST /stop)."""

from __future__ import annotations

import pytest

from loadmgr.errors import ClusterError
from loadmgr.service.collection.settings import client_for


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8089", "http://localhost:41234", "http://[::1]:8089"]
)
def test_a_loopback_address_is_used(url: str) -> None:
    client = client_for(None, url)
    try:
        assert client.base_url.startswith(url.rstrip("/"))
    finally:
        client.close()


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.7:8089",
        "http://locust.other-team.internal:8089",
        "https://127.0.0.1:8089",
        "http://127.0.0.1",  # no port: not what a local cluster records
        "http://user:pw@127.0.0.1:8089",
        "http://127.0.0.1.attacker.example:8089",
        "file:///etc/passwd",
        "http://[::1",
    ],
)
def test_any_other_address_is_never_contacted(url: str) -> None:
    with pytest.raises(ClusterError, match="not on this machine's loopback"):
        client_for(None, url)
