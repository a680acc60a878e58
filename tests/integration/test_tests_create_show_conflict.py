import pytest

pytestmark = pytest.mark.integration


def test_create_list_show_on_real_server(cli, mongo_uri, tmp_path):
    lf = tmp_path / "locustfile.py"
    lf.write_text("from locust import HttpUser\n")
    r = cli("tests", "create", "--name", "api", "--target-url", "http://127.0.0.1:1",
            "--locustfile", str(lf), "-o", "json")
    assert r.exit_code == 0, r.stderr
    doc = r.json()
    r2 = cli("tests", "show", "api", "-o", "json")
    assert r2.json() == doc
    r3 = cli("tests", "create", "--name", "api", "--target-url", "http://127.0.0.1:1",
             "--locustfile", str(lf))
    assert r3.exit_code == 5
    assert r3.stderr.startswith("error: ")
