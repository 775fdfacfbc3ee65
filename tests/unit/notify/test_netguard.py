"""The webhook guard: which addresses it refuses, the allow-list, and pinned connections."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from helpers import Receiver
from sqltide.errors import ConfigError
from sqltide.notify import DeliveryError, send_webhook
from sqltide.notify.headers import email_address_problem, header_problem, headers_problem
from sqltide.notify.netguard import (
    NetworkGuard,
    TargetForbidden,
    address_kind,
    guarded_client,
    parse_allow_list,
)
from sqltide.settings import load_settings

KINDS = [
    ("127.0.0.1", "loopback"),
    ("127.255.0.9", "loopback"),
    ("::1", "loopback"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("192.168.1.1", "private"),
    ("100.64.0.1", "private"),  # CGNAT
    ("fd12:3456::1", "private"),  # ULA
    ("192.0.2.1", "private"),  # documentation
    ("198.18.0.1", "private"),  # benchmarking
    ("169.254.1.1", "link-local"),
    ("fe80::1", "link-local"),
    ("169.254.169.254", "metadata"),
    ("169.254.170.2", "metadata"),
    ("fd00:ec2::254", "metadata"),
    ("100.100.100.200", "metadata"),
    ("168.63.129.16", "metadata"),
    ("0.0.0.0", "unspecified"),
    ("::", "unspecified"),
    ("0.1.2.3", "private"),
    ("224.0.0.1", "multicast"),
    ("ff02::1", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    # IPv6 forms that carry an IPv4 address are judged by it
    ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:169.254.169.254", "metadata"),
    ("::127.0.0.1", "loopback"),  # IPv4-compatible
    ("64:ff9b::a9fe:a9fe", "metadata"),  # NAT64 of 169.254.169.254
    ("64:ff9b::10.0.0.1", "private"),
    ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
    ("2002:a9fe:a9fe::1", "metadata"),
    # global unicast
    ("8.8.8.8", None),
    ("93.184.216.34", None),
    ("2606:4700::1111", None),
    ("::ffff:8.8.8.8", None),
    ("2002:808:808::1", None),
    ("64:ff9b::8.8.8.8", None),
]


@pytest.mark.parametrize(("address", "kind"), KINDS)
def test_address_kind(address: str, kind: str | None) -> None:
    assert address_kind(ipaddress.ip_address(address)) == kind


REFUSED_BY_DEFAULT = [
    "http://127.0.0.1:8080/hook",
    "http://10.0.0.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]:9/",
    "http://[::ffff:127.0.0.1]/",
    "http://[fd00:ec2::254]/",
    "http://2130706433/",  # decimal 127.0.0.1
    "http://0x7f.1/",  # hex and short form
    "http://0x7f000001/",
    "http://127.1/",
    "http://0/",
    "https://localhost:8443/",  # a name that resolves to loopback
    "http://LOCALHOST/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://Metadata.Google.Internal./",
]


@pytest.mark.parametrize("url", REFUSED_BY_DEFAULT)
def test_the_default_guard_refuses(url: str) -> None:
    problem = NetworkGuard().url_problem(url)
    assert problem is not None
    assert "may not reach" in problem


def test_refusals_name_the_address_and_what_opens_it() -> None:
    guard = NetworkGuard()
    assert guard.url_problem("http://2130706433/") == (
        "2130706433 resolves to 127.0.0.1, a loopback address; webhooks may not reach it "
        "(see SQLTIDE_WEBHOOK_ALLOW_PRIVATE or SQLTIDE_WEBHOOK_ALLOWED_NETWORKS)"
    )
    assert guard.url_problem("http://169.254.169.254/") == (
        "169.254.169.254 is a cloud metadata address; webhooks may not reach it "
        "(see SQLTIDE_WEBHOOK_ALLOWED_NETWORKS)"
    )


def test_global_addresses_and_unresolvable_names_pass_at_create_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    guard = NetworkGuard()
    assert guard.url_problem("https://93.184.216.34/hook") is None
    assert guard.url_problem("https://[2606:4700::1111]:8443/hook") is None
    resolver = FakeResolver({"hooks.example.test": [["93.184.216.34"]]})
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    assert guard.url_problem("https://hooks.example.test/x") is None
    assert resolver.lookups == ["hooks.example.test"]
    # a name that does not resolve (yet) is judged at each delivery instead
    assert guard.url_problem("https://not-yet.example.test/x") is None
    assert resolver.lookups[-1] == "not-yet.example.test"


def test_allow_private_opens_private_addresses_but_not_metadata() -> None:
    guard = NetworkGuard(allow_private=True)
    for url in (
        "http://127.0.0.1:9/",
        "http://10.0.0.1/",
        "http://[fe80::1]/",
        "http://localhost/",
    ):
        assert guard.url_problem(url) is None, url
    for url in (
        "http://169.254.169.254/",
        "http://[::ffff:169.254.169.254]/",
        "http://metadata.google.internal/",
        "http://0.0.0.0/",
        "http://224.0.0.1/",
    ):
        assert guard.url_problem(url) is not None, url


def test_allowed_networks_open_exactly_what_they_hold() -> None:
    networks, hosts = parse_allow_list("127.0.0.1, 10.1.0.0/16 ::1")
    guard = NetworkGuard(allowed_networks=networks, allowed_hosts=hosts)
    assert guard.url_problem("http://127.0.0.1:9/") is None
    assert guard.url_problem("http://[::ffff:127.0.0.1]:9/") is None  # the same address
    assert guard.url_problem("http://[::1]:9/") is None
    assert guard.url_problem("http://10.1.200.3/") is None
    assert guard.url_problem("http://localhost/") is None  # resolves to allowed addresses
    assert guard.url_problem("http://127.0.0.2/") is not None
    assert guard.url_problem("http://10.2.0.1/") is not None
    assert guard.url_problem("http://169.254.169.254/") is not None
    # a listed network is taken literally, metadata included
    metadata = NetworkGuard(allowed_networks=parse_allow_list("169.254.169.254")[0])
    assert metadata.url_problem("http://169.254.169.254/") is None


def test_allowed_host_names_open_private_addresses_for_that_name_only() -> None:
    guard = NetworkGuard(allowed_hosts=parse_allow_list("localhost, *.corp.example")[1])
    assert guard.url_problem("http://localhost:9/") is None
    assert guard.url_problem("http://127.0.0.1:9/") is not None  # not by its address
    assert guard.host_allowed("hooks.corp.example")
    assert guard.host_allowed("a.b.corp.example.")
    assert not guard.host_allowed("corp.example")
    assert not guard.host_allowed("evilcorp.example")
    # a name never opens metadata addresses
    assert guard.address_problem(ipaddress.ip_address("169.254.169.254"), host_allowed=True)


@pytest.mark.parametrize("entry", ["10.0.0.0/33", "http://x", "a b/c", "1.2.3", "*"])
def test_the_allow_list_refuses_what_it_cannot_read(entry: str) -> None:
    with pytest.raises(ValueError, match="neither a network"):
        parse_allow_list(entry)


def test_settings_read_and_check_the_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SQLTIDE_WEBHOOK_ALLOW_PRIVATE", "true")
    monkeypatch.setenv("SQLTIDE_WEBHOOK_ALLOWED_NETWORKS", "169.254.169.254, hooks.internal")
    guard = NetworkGuard.from_settings(load_settings())
    assert guard.allow_private
    assert guard.allowed_networks == (ipaddress.ip_network("169.254.169.254/32"),)
    assert guard.allowed_hosts == frozenset({"hooks.internal"})
    monkeypatch.setenv("SQLTIDE_WEBHOOK_ALLOWED_NETWORKS", "10.0.0.0/40")
    with pytest.raises(ConfigError, match="SQLTIDE_WEBHOOK_ALLOWED_NETWORKS"):
        load_settings()


def test_the_default_settings_refuse_private_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SQLTIDE_WEBHOOK_ALLOWED_NETWORKS")  # set by conftest for receivers
    guard = NetworkGuard.from_settings(load_settings())
    assert guard == NetworkGuard()


# -- delivery: resolved once, every address judged, connection pinned -------------------------
@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _port(receiver: Receiver) -> int:
    return int(receiver.server.server_address[1])


@pytest.mark.parametrize("host", ["127.0.0.1", "[::ffff:127.0.0.1]", "2130706433", "localhost"])
def test_a_refused_delivery_never_connects(receiver: Receiver, host: str) -> None:
    with pytest.raises(DeliveryError) as caught:
        send_webhook(
            f"http://{host}:{_port(receiver)}/hook",
            {"a": 1},
            secret=None,
            timeout=5,
            guard=NetworkGuard(),
        )
    assert caught.value.code == "target_forbidden"
    assert not caught.value.retryable
    assert "loopback" in caught.value.message
    assert receiver.requests == []


def test_the_guard_of_the_environment_is_the_default(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    send_webhook(receiver.url, {"a": 1}, secret=None, timeout=5)  # conftest allows loopback
    assert len(receiver.requests) == 1
    monkeypatch.delenv("SQLTIDE_WEBHOOK_ALLOWED_NETWORKS")
    with pytest.raises(DeliveryError, match="loopback"):
        send_webhook(receiver.url, {"a": 1}, secret=None, timeout=5)
    assert len(receiver.requests) == 1


class FakeResolver:
    """A resolver whose answers change: ``answers[name]`` lists what each lookup returns.

    Literal addresses (also ``AI_NUMERICHOST`` lookups) and ``localhost`` go to the real
    ``getaddrinfo``, which makes no DNS query for them; any other name fails to resolve.
    """

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self.answers = answers
        self.lookups: list[str] = []
        self.real = socket.getaddrinfo

    def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        numeric = kwargs.get("flags", 0) & socket.AI_NUMERICHOST
        if isinstance(host, str) and host in self.answers and not numeric:
            self.lookups.append(host)
            round_ = (
                self.answers[host].pop(0) if len(self.answers[host]) > 1 else self.answers[host][0]
            )
            return [
                (
                    socket.AF_INET6 if ":" in a else socket.AF_INET,
                    socket.SOCK_STREAM,
                    6,
                    "",
                    (a, port, 0, 0) if ":" in a else (a, port),
                )
                for a in round_
            ]
        if numeric or host == "localhost":
            return self.real(host, port, *args, **kwargs)  # no DNS query for these
        try:
            ipaddress.ip_address(str(host))
        except ValueError:
            self.lookups.append(host)
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
        return self.real(host, port, *args, **kwargs)


def test_the_connection_goes_to_the_judged_address(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the first answer passes the check, a second would point elsewhere.
    The connection uses the first answer; nothing asks DNS again between check and connect."""
    resolver = FakeResolver({"hooks.rebind.test": [["127.0.0.1"], ["127.0.0.2"]]})
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    guard = NetworkGuard(allowed_networks=parse_allow_list("127.0.0.1")[0])
    with guarded_client(guard, timeout=5) as http:
        result = send_webhook(
            f"http://hooks.rebind.test:{_port(receiver)}/hook",
            {"a": 1},
            secret=None,
            timeout=5,
            client=http,
        )
    assert result.ok
    assert resolver.lookups == ["hooks.rebind.test"]
    (request,) = receiver.requests
    assert request["headers"]["Host"] == f"hooks.rebind.test:{_port(receiver)}"


def test_one_refused_address_refuses_the_name(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a global address beside a loopback one: refused before any connection is tried
    resolver = FakeResolver({"mixed.test": [["192.0.2.1", "127.0.0.1"]]})
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    guard = NetworkGuard(allowed_networks=parse_allow_list("192.0.2.0/24")[0])
    with pytest.raises(DeliveryError) as caught:
        send_webhook(
            f"http://mixed.test:{_port(receiver)}/", {"a": 1}, secret=None, timeout=5, guard=guard
        )
    assert caught.value.code == "target_forbidden"
    assert "mixed.test resolves to 127.0.0.1, a loopback address" in caught.value.message
    assert receiver.requests == []


def test_a_name_that_does_not_resolve_is_retried_later(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_dns(host: Any, *args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    with pytest.raises(DeliveryError) as caught:
        send_webhook(
            "https://nowhere.test/", {"a": 1}, secret=None, timeout=5, guard=NetworkGuard()
        )
    assert caught.value.code == "webhook_unreachable"
    assert caught.value.retryable


def test_the_guarded_client_ignores_proxy_variables(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a proxy would resolve and connect out of the guard's sight
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{_port(receiver)}")
    monkeypatch.setenv("ALL_PROXY", f"http://127.0.0.1:{_port(receiver)}")
    with guarded_client(NetworkGuard(), timeout=5) as http, pytest.raises(TargetForbidden):
        http.post(f"http://10.0.0.1:{_port(receiver)}/", content=b"{}")
    assert receiver.requests == []


# -- header values and e-mail addresses --------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("X-Team", "data", None),
        ("X-Tab", "a\tb", None),
        ("X-A", "a\r\nHost: evil", "line break"),
        ("X-A", "a\nb", "line break"),
        ("X-A", "a\rb", "line break"),
        ("X-A", "a\x00b", "U+0000"),
        ("X-A", "a\x7fb", "U+007F"),
        ("X-A", "café", "not ASCII"),
        ("X-A", 5, "must be a string"),
        ("Bad Name", "v", "not a header name"),
        ("X-A\r\nHost", "v", "not a header name"),
        ("", "v", "not a header name"),
        ("Host", "evil.example", "set by sqltide"),
        ("transfer-encoding", "chunked", "set by sqltide"),
    ],
)
def test_header_problem(name: Any, value: Any, problem: str | None) -> None:
    found = header_problem(name, value)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_headers_problem_names_the_header() -> None:
    assert headers_problem(None) is None
    assert headers_problem({"X-A": "1", "X-B": "2"}) is None
    assert headers_problem({"X-A": "1", "X-B": "2\r\n"}) == (
        "X-B",
        "the value of X-B holds a control character (a line break)",
    )
    assert headers_problem(["X-A"]) == (None, "a mapping of header names to strings")
    assert headers_problem({f"X-{n}": "v" for n in range(33)}) == (None, "at most 32 headers")


def test_send_webhook_refuses_a_line_break_in_a_header(receiver: Receiver) -> None:
    with pytest.raises(DeliveryError) as caught:
        send_webhook(
            receiver.url, {"a": 1}, secret=None, timeout=5, headers={"X-A": "1\r\nX-Injected: 1"}
        )
    assert caught.value.code == "webhook_invalid_header"
    assert not caught.value.retryable
    assert receiver.requests == []


@pytest.mark.parametrize(
    ("address", "ok"),
    [
        ("ops@example.com", True),
        ("first.last+tag@sub.example.co.uk", True),
        ("ops@example.com\r\nBcc: all@example.com", False),
        ("ops@example.com\nBcc: all@example.com", False),
        ("ops@example.com\u2028Bcc: all@example.com", False),  # a Unicode line separator
        ("ops@exa\x00mple.com", False),
        ("ops @example.com", False),
        ("Ops <ops@example.com>", False),
        ("a@example.com, b@example.com", False),
        ("a@example.com;b@example.com", False),
        ("example.com", False),
        ("@example.com", False),
        ("ops@", False),
        ("a@b@example.com", False),
        ("ops@example..com", False),
        ("", False),
    ],
)
def test_email_address_problem(address: str, ok: bool) -> None:
    assert (email_address_problem(address) is None) is ok


def test_an_address_list_is_not_taken_for_one_address() -> None:
    assert email_address_problem("a@x.com,b@y.com") == (
        "holds ',': give one bare address, without a display name"
    )


def test_the_guard_parses_urls_as_the_http_client_does() -> None:
    # user info before the host is not the host
    assert NetworkGuard().url_problem("http://example.com@127.0.0.1/") is not None
    assert NetworkGuard().url_problem("http://example.com\\@127.0.0.1/") is not None
