"""Issue 21, item 10: a secret is masked in every form a receiver may echo it in (raw,
percent-decoded, plus-decoded, percent-encoded; quoted in JSON or HTML), by the one function
every message that could quote one goes through (`secret_refs.mask_secrets`)."""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from urllib.parse import quote, quote_plus, unquote, unquote_plus

import pytest
import responses
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from loadmgr.errors import ClusterError
from loadmgr.locust.client import LocustClient
from loadmgr.models import ClusterAuth
from loadmgr.secret_refs import MASK, mask_secrets
from loadmgr.webhooks import MASK as WEBHOOK_MASK
from loadmgr.webhooks import mask, post_json
from tests.webhook_receiver import Answer, receiving

SIG = "Zm9v%2BYmFyYmF6%2FcXV4"  # a signature as a URL carries it: base64, percent-encoded


def _every_form(secret: str) -> list[str]:
    return [
        secret,
        unquote(secret),
        unquote_plus(secret),
        quote(secret, safe=""),
        quote_plus(secret),
        quote(secret, safe="").lower(),
    ]


def test_a_signature_echoed_decoded_is_masked() -> None:
    """The reproduction: `?sig=Zm9v%2BYmFy…`, a 403 echoing `Zm9v+YmFy…`."""
    url = f"https://hooks.example.com/in?sig={SIG}"
    for echoed in _every_form(SIG):
        text = mask(f"HTTP 403: bad signature {echoed}", url)
        assert unquote(SIG) not in text and SIG not in text and WEBHOOK_MASK in text


def test_a_refusing_receiver_echoing_the_decoded_secret_is_masked_in_the_outcome() -> None:
    with receiving(Answer(403, body=f"signature {unquote(SIG)} is wrong")) as receiver:
        url = f"{receiver.url}?sig={SIG}"
        delivery = post_json(url, {"text": "x"}, bound=5.0)
    assert delivery.status == 403 and delivery.error is not None
    assert unquote(SIG) not in delivery.error and SIG not in delivery.error


def test_a_proxy_echoing_the_cluster_header_is_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "tok+en/with%2Fodd=chars"
    monkeypatch.setenv("LOADMGR_SECRET_TOKEN", secret)
    auth = ClusterAuth(type="header", headerName="X-T", secretEnv="LOADMGR_SECRET_TOKEN")
    for echoed in _every_form(secret):
        with responses.RequestsMock() as mock:
            mock.get("http://l.test/stats/requests", body=f"no: {echoed} here", status=500)
            with pytest.raises(ClusterError) as caught:
                LocustClient("http://l.test", auth=auth).stats()
        assert echoed not in caught.value.message and MASK in caught.value.message


SECRET_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=12, max_size=40
)


# One pattern a call, compiled anew for each generated secret: slow on a busy machine.
@settings(deadline=None)
@given(secret=SECRET_TEXT, before=st.text(max_size=20), after=st.text(max_size=20))
def test_every_form_of_any_secret_is_masked(secret: str, before: str, after: str) -> None:
    forms = [f for f in _every_form(secret) if len(f) >= 4 and f.strip()]
    # A secret the mask itself contains cannot be masked out of existence.
    assume(not any(f.lower() in MASK.lower() or MASK in f for f in forms))
    for form in forms:
        masked = mask_secrets(f"{before}{form}{after}", [secret])
        assert form.lower() not in masked.lower()


# One pattern a call, compiled anew for each generated secret: slow on a busy machine.
@settings(deadline=None)
@given(secret=SECRET_TEXT)
def test_every_form_of_a_webhook_query_secret_is_masked(secret: str) -> None:
    url = f"https://hooks.example.com/in?sig={quote(secret, safe='')}"
    for form in [f for f in _every_form(secret) if len(f) >= 4 and f.strip()]:
        assume(form.lower() not in WEBHOOK_MASK.lower())
        assert form.lower() not in mask(f"echo: {form} end", url).lower()


# --- masked before cut: every path that shortens an echoed answer -------------------------

TOKEN = "s3cr3t-Tok+en/AB=="


def _no_prefix_of(secret: str, text: str) -> bool:
    """No piece of `secret` of 6 characters or more shows in `text`."""
    return not any(secret[:n] in text for n in range(6, len(secret) + 1))


@pytest.mark.parametrize("offset", [0, 100, 150, 160, 170, 180, 190, 195, 199, 210, 400, 790])
def test_an_echo_cut_in_its_middle_leaves_no_piece_of_the_secret(
    monkeypatch: pytest.MonkeyPatch, offset: int
) -> None:
    """Each message is cut to a length; cut first and masked after, a secret the cut ran
    through kept its start (an adversary's 403: 175 × `x` + `bad sig <sig>`). Masked first,
    whatever the secret's place."""
    from loadmgr.errors import SourceError
    from loadmgr.prometheus.client import Credentials, PrometheusClient

    body = "x" * offset + f" bad sig {TOKEN} end"
    monkeypatch.setenv("LOADMGR_SECRET_TOKEN", TOKEN)
    # A Locust behind a proxy echoing the header, in text and as an HTML title.
    auth = ClusterAuth(type="header", headerName="X-T", secretEnv="LOADMGR_SECRET_TOKEN")
    for kind, text in (("text/plain", body), ("text/html", f"<html><p>{body}</p></html>")):
        with responses.RequestsMock() as mock:
            mock.get("http://l.test/stats/requests", body=text, status=500, content_type=kind)
            with pytest.raises(ClusterError) as caught:
                LocustClient("http://l.test", auth=auth).stats()
        assert _no_prefix_of(TOKEN, caught.value.message), caught.value.message
    # Prometheus behind an auth proxy: the token in the page's title, or in its JSON error.
    client = PrometheusClient(
        "http://prom.test", credentials=Credentials(bearer_token_env="LOADMGR_SECRET_TOKEN")
    )
    for answer in (
        {"body": f"<title>{body}</title>", "status": 401, "content_type": "text/html"},
        {"body": f"<title>{body}</title>", "status": 200, "content_type": "text/html"},
        {"json": {"status": "error", "errorType": "internal", "error": body}, "status": 500},
    ):
        with responses.RequestsMock() as mock:
            mock.get("http://prom.test/api/v1/query", **answer)  # type: ignore[arg-type]
            with pytest.raises(SourceError) as raised:
                client.query("up")
        assert _no_prefix_of(TOKEN, raised.value.message), raised.value.message
    # A webhook receiver refusing with the URL's secret in its answer.
    with receiving(Answer(403, body=body.replace(TOKEN, unquote(SIG)))) as receiver:
        delivery = post_json(f"{receiver.url}?sig={SIG}", {"text": "x"}, bound=5.0)
    assert delivery.error is not None
    assert _no_prefix_of(unquote(SIG), delivery.error), delivery.error


# --- echoed through another encoding: JSON string escapes, HTML/XML character references ---


def _json_php(text: str) -> str:
    return json.dumps(text)[1:-1].replace("/", "\\/")  # PHP's json_encode escapes `/`


def _json_every_sign(text: str) -> str:
    """As .NET's System.Text.Json writes a string: every sign (`+`, `&`, `'`…) `\\u00XX`."""
    return "".join(
        c
        if c.isascii() and c.isalnum()
        else json.dumps(c, ensure_ascii=True)[1:-1]
        if len(json.dumps(c, ensure_ascii=True)) > 3
        else f"\\u{ord(c):04X}"
        for c in text
    )


def _numeric_references(text: str) -> str:
    return "".join(c if c.isascii() and c.isalnum() else f"&#{ord(c)};" for c in text)


def _hex_references(text: str) -> str:
    return "".join(c if c.isascii() and c.isalnum() else f"&#x{ord(c):X};" for c in text)


def _named_references(text: str) -> str:
    named = {"+": "&plus;", "/": "&sol;", "=": "&equals;", "%": "&percnt;", "&": "&amp;"}
    return "".join(named.get(c, c) for c in text)


# Each echo, and the decoder that reads it back: what a reader of the message can recover.
ENCODINGS: dict[str, tuple[Callable[[str], str], Callable[[str], str]]] = {
    "json (ensure_ascii)": (lambda t: json.dumps(t)[1:-1], lambda t: json.loads(f'"{t}"')),
    "json (PHP, \\/)": (_json_php, lambda t: json.loads(f'"{t}"')),
    "json (every sign \\u00XX)": (_json_every_sign, lambda t: json.loads(f'"{t}"')),
    "html.escape": (html.escape, html.unescape),
    "numeric references": (_numeric_references, html.unescape),
    "hex references": (_hex_references, html.unescape),
    "named references": (_named_references, html.unescape),
}


@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_a_signature_echoed_in_json_or_html_is_masked(encoding: str) -> None:
    """A receiver quoting the signature in a JSON answer (PHP escapes `/`, .NET every
    sign) or an HTML page (`&#43;`): the URL's secret, read back, is not in the outcome."""
    encode, decode = ENCODINGS[encoding]
    url = f"https://hooks.example.com/in?sig={SIG}"
    for form in (unquote(SIG), SIG):
        text = mask(f"HTTP 403: bad signature {encode(form)}", url)
        assert unquote(SIG) not in decode(text) and SIG not in decode(text), text


JSON_SAFE_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")),
    min_size=12,
    max_size=40,
)


# One pattern a call, compiled anew for each generated secret: slow on a busy machine.
@settings(deadline=None)
@given(secret=JSON_SAFE_TEXT, encoding=st.sampled_from(list(ENCODINGS)))
@example(secret="00000000000\\", encoding="json (ensure_ascii)")  # `\\` masked whole
def test_any_secret_echoed_in_any_encoding_is_masked(secret: str, encoding: str) -> None:
    encode, decode = ENCODINGS[encoding]
    assume(secret.strip() and MASK not in secret)
    masked = mask_secrets(f"echo: {encode(secret)} end", [secret])
    assert secret not in decode(masked)
