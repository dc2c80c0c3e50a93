"""Upstream responses get the same strictness as requests (PROXY.md §2.1 and §2.6): a malformed
response becomes a 502 (or, once the head has been relayed, a cut connection), and never poisons a pooled
connection for the next request."""

from __future__ import annotations

import eg
import pytest

assert_json_error = eg.assert_json_error

MALFORMED_RESPONSES = {
    "cl-and-te": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "two-different-cl": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    "cl-not-a-number": b"HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\nhello",
    "cl-above-int64": b"HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775808\r\n\r\nhello",
    "cl-uint64-max": b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\nhello",
    "obs-fold": b"HTTP/1.1 200 OK\r\nX-A: one\r\n two\r\nContent-Length: 2\r\n\r\nok",
    "space-before-colon": b"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok",
    "nul-in-value": b"HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 2\r\n\r\nok",
    "bad-status-code": b"HTTP/1.1 2OO OK\r\nContent-Length: 2\r\n\r\nok",
    "not-http": b"SSH-2.0-OpenSSH_9.2\r\n\r\n",
}


@pytest.mark.parametrize("name", sorted(MALFORMED_RESPONSES))
def test_malformed_upstream_response_gives_502(simple_proxy, name):
    raw = MALFORMED_RESPONSES[name]
    proxy, up = simple_proxy(lambda req: eg.Reply(action="raw", raw=raw, close_after=True))
    with eg.Client(proxy.listen_port) as c:
        resp = c.request("GET", f"/bad/{name}")
    assert_json_error(resp, 502)


def test_bad_chunk_in_upstream_body_never_completes_the_response(simple_proxy):
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0x5\r\nhello\r\n0\r\n\r\n"
    proxy, _ = simple_proxy(lambda req: eg.Reply(action="raw", raw=raw, close_after=True))
    with eg.Client(proxy.listen_port) as c:
        c.send(eg.build_request("GET", "/bad-chunk"))
        try:
            resp = c.read_response()
        except (eg.PeerClosed, ConnectionResetError, ValueError):
            return  # head relayed, then the connection cut: the client cannot take a truncated body as whole
        assert_json_error(resp, 502)


def test_extra_bytes_after_a_response_are_not_read_as_the_next_response(simple_proxy):
    """Response splitting: bytes after a complete response must not answer the next request (PROXY.md §2.1)."""
    smuggled = b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled"

    def reply(req: eg.RecordedRequest) -> eg.Reply:
        if req.path == "/first":
            return eg.Reply(action="raw", raw=b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + smuggled)
        return eg.Reply(body=b"real:" + req.path.encode())

    proxy, up = simple_proxy(reply)
    with eg.Client(proxy.listen_port) as c:
        assert c.request("GET", "/first").body == b"ok"
    with eg.Client(proxy.listen_port) as c:
        for i in range(4):
            assert c.request("GET", f"/next/{i}").body == f"real:/next/{i}".encode()


def test_interim_103_is_not_taken_for_the_final_response(simple_proxy):
    raw = (b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
           b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal")
    proxy, _ = simple_proxy(lambda req: eg.Reply(action="raw", raw=raw))
    with eg.Client(proxy.listen_port) as c:
        resp = c.request("GET", "/hints")
        assert resp.status == 200 and resp.body == b"final"
        assert c.request("GET", "/after").status == 200


def test_204_and_304_have_no_body_even_with_content_length(simple_proxy):
    def reply(req: eg.RecordedRequest) -> eg.Reply:
        if req.path == "/204":
            return eg.Reply(status=204, reason="No Content")
        if req.path == "/304":
            return eg.Reply(status=304, reason="Not Modified", headers=[("Content-Length", "100")])
        return eg.Reply(body=b"plain")

    proxy, _ = simple_proxy(reply)
    with eg.Client(proxy.listen_port) as c:
        r204 = c.request("GET", "/204")
        r304 = c.request("GET", "/304")
        after = c.request("GET", "/after")
    assert (r204.status, r204.body) == (204, b"")
    assert (r304.status, r304.body) == (304, b"")
    assert (after.status, after.body) == (200, b"plain")


def test_close_delimited_response_is_relayed_whole(simple_proxy):
    body = b"until-close " * 5000
    raw = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n" + body
    proxy, up = simple_proxy(lambda req: eg.Reply(action="raw", raw=raw, close_after=True))
    with eg.Client(proxy.listen_port) as c:
        resp = c.request("GET", "/eof-body")
    assert resp.status == 200 and resp.body == body


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_truncated_upstream_body_is_never_passed_off_as_complete(simple_proxy, framing):
    """The upstream dies mid-body: the client must see a cut connection, not a shorter 'complete' response."""
    if framing == "content-length":
        raw = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"t" * 10
    else:
        raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n" + b"t" * 10 + b"\r\n"
    proxy, _ = simple_proxy(lambda req: eg.Reply(action="raw", raw=raw, close_after=True))
    with eg.Client(proxy.listen_port) as c:
        c.send(eg.build_request("GET", f"/truncated/{framing}"))
        try:
            resp = c.read_response(timeout=10)
        except (eg.PeerClosed, ConnectionResetError):
            resp = None  # the only acceptable ending once the head has gone out
        if resp is not None:
            assert_json_error(resp, 502)  # allowed only if edgeguard held the head back
    with eg.Client(proxy.listen_port) as c:
        c.send(eg.build_request("GET", "/after"))
        try:
            c.read_response(timeout=10)
        except (eg.PeerClosed, ConnectionResetError):
            pass
    assert proxy.proc.poll() is None


# Fuzzing: the head after an interim response gets the same strict scan as the first one.
AFTER_100_CONTINUE = {
    "space-before-colon": b"HTTP/1.1 200 OK\r\nX-A : b\r\nContent-Length: 2\r\n\r\nok",
    "bare-cr": b"HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 2\r\n\r\nok",
    "obs-fold": b"HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 2\r\n\r\nok",
}


@pytest.mark.parametrize("name", sorted(AFTER_100_CONTINUE))
def test_malformed_head_after_100_continue_gives_502(simple_proxy, name):
    raw = b"HTTP/1.1 100 Continue\r\n\r\n" + AFTER_100_CONTINUE[name]
    proxy, _ = simple_proxy(lambda req: eg.Reply(action="raw", raw=raw, close_after=True))
    with eg.Client(proxy.listen_port) as c:
        resp = c.request("GET", f"/after-100/{name}")
    assert_json_error(resp, 502)


@pytest.mark.parametrize("field", [b"Content-Length: 5", b"Transfer-Encoding: chunked"])
def test_interim_response_with_body_framing_ends_at_its_blank_line(simple_proxy, field):
    """RFC 9112 §6.3: a 1xx response never has a body, whatever its fields claim."""
    raw = (b"HTTP/1.1 103 Early Hints\r\n" + field + b"\r\n\r\n"
           b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal")
    proxy, _ = simple_proxy(lambda req: eg.Reply(action="raw", raw=raw))
    with eg.Client(proxy.listen_port) as c:
        resp = c.request("GET", "/hints-with-framing")
        assert resp.status == 200 and resp.body == b"final"


BAD_STATUS_LINES = {
    "no-code": b"HTTP/1.1 \r\nContent-Length: 2\r\n\r\nok",
    "one-digit": b"HTTP/1.1 2 OK\r\nContent-Length: 2\r\n\r\nok",
    "two-digits": b"HTTP/1.1 20 OK\r\nContent-Length: 2\r\n\r\nok",
    "four-digits": b"HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok",
    "above-599": b"HTTP/1.1 600 Odd\r\nContent-Length: 2\r\n\r\nok",
    "below-100": b"HTTP/1.1 099 Odd\r\nContent-Length: 2\r\n\r\nok",
}


@pytest.mark.parametrize("name", sorted(BAD_STATUS_LINES))
def test_status_line_without_a_valid_three_digit_code_gives_502(simple_proxy, name):
    raw = BAD_STATUS_LINES[name]
    proxy, _ = simple_proxy(lambda req: eg.Reply(action="raw", raw=raw, close_after=True))
    with eg.Client(proxy.listen_port) as c:
        resp = c.request("GET", f"/status/{name}")
    assert_json_error(resp, 502)


def test_status_line_without_reason_phrase_is_relayed(simple_proxy):
    raw = b"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok"
    proxy, _ = simple_proxy(lambda req: eg.Reply(action="raw", raw=raw, close_after=True))
    with eg.Client(proxy.listen_port) as c:
        resp = c.request("GET", "/no-reason")
    assert resp.status == 200 and resp.body == b"ok"
