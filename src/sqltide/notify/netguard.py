"""Which addresses a webhook may reach: a server-side request forgery guard.

A webhook URL is chosen by whoever holds an API key, but the request leaves from the sqltide
host, inside its network: without a guard, a rule could POST to the cloud metadata service
(``http://169.254.169.254/``), to the host's own loopback services or to anything on the
private network, and read the start of the answer in the delivery log. So by default a
webhook may reach only *global* unicast addresses.

What is refused, and what opens it:

==================================================  ================================  =======
addresses                                           kind                              opened
                                                                                      by
==================================================  ================================  =======
127.0.0.0/8, ::1                                    loopback                          P, N, H
169.254.0.0/16, fe80::/10                           link-local                        P, N, H
10/8, 172.16/12, 192.168/16, 100.64/10 (CGNAT),     private                           P, N, H
fc00::/7 (ULA), documentation, benchmarking and
other special-purpose ranges (not ``is_global``)
169.254.169.254, 169.254.170.2, fd00:ec2::254,      metadata                          N
100.100.100.200, 192.0.0.192, 168.63.129.16, and
the names metadata.google.internal, metadata.goog,
metadata
0.0.0.0/8, ::                                       unspecified                       N
224.0.0.0/4, ff00::/8                               multicast                         N
240.0.0.0/4 (with 255.255.255.255)                  reserved                          N
==================================================  ================================  =======

P is ``SQLTIDE_WEBHOOK_ALLOW_PRIVATE=true``; N a network of
``SQLTIDE_WEBHOOK_ALLOWED_NETWORKS`` that holds the address; H a host name of that list (or a
``*.suffix`` pattern) that the URL names. A listed host name works like P for that name alone:
its addresses may be private, never metadata. A listed network is taken literally: whatever
it holds is allowed. An IPv6 address that carries an IPv4 one (IPv4-mapped ``::ffff:a.b.c.d``,
IPv4-compatible ``::a.b.c.d``, NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``) is judged by the
IPv4 address, since that is where the packets go.

When the guard runs:

- when a target or subscription is created (:meth:`NetworkGuard.url_problem`): a literal
  address, also in the decimal, octal or hex forms ``inet_aton`` accepts
  (``http://2130706433/``, ``http://0x7f.1/``), is judged at once; a host name is resolved
  and judged when it resolves, and accepted when it does not resolve (yet);
- at every delivery (:class:`GuardedTransport`): the host is resolved with ``getaddrinfo``,
  exactly as the HTTP client would, every address is judged (one refused address refuses
  the delivery), and the connection is made to a judged address. Nothing resolves the name
  a second time, so an answer that changes between check and connect (DNS rebinding) does
  not matter. TLS still checks the certificate against the URL's host name.

A refused delivery raises :class:`TargetForbidden`; :func:`~sqltide.notify.webhook.send_webhook`
turns it into the ``target_forbidden`` delivery error, which is not retried.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

import httpcore
import httpx

if TYPE_CHECKING:
    from sqltide.settings import Settings

__all__ = [
    "GuardedTransport",
    "NetworkGuard",
    "TargetForbidden",
    "address_kind",
    "guarded_client",
    "parse_allow_list",
]

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Cloud instance metadata and similar host-only services: never opened by ALLOW_PRIVATE.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, Hetzner ...
        "169.254.170.2",  # AWS ECS task credentials
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
        "168.63.129.16",  # Azure WireServer (a global address, reachable from every VM)
    )
)
#: Host names of metadata services, refused by name (before any resolution).
METADATA_NAMES = frozenset({"metadata.google.internal", "metadata.goog", "metadata"})

# Python's is_global has changed between patch releases; these ranges are refused whatever
# the running version says.
_NOT_GLOBAL_V4 = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
    )
)
_NOT_GLOBAL_V6 = tuple(
    ipaddress.IPv6Network(n)
    for n in ("64:ff9b:1::/48", "100::/64", "2001::/23", "2001:db8::/32", "fc00::/7", "fec0::/10")
)
_BROADCAST = ipaddress.IPv4Address("255.255.255.255")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")

#: What each kind of refused address is called in error messages.
_DESCRIPTIONS = {
    "loopback": "a loopback address",
    "link-local": "a link-local address",
    "private": "a private or special-purpose address",
    "metadata": "a cloud metadata address",
    "unspecified": "the unspecified address",
    "multicast": "a multicast address",
    "reserved": "a reserved address",
}
#: The kinds SQLTIDE_WEBHOOK_ALLOW_PRIVATE (or an allowed host name) opens.
_PRIVATE_KINDS = frozenset({"loopback", "link-local", "private"})
_HOST_NAME = re.compile(r"^(\*\.)?([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9_-]{1,63}$")


class TargetForbidden(Exception):
    """The webhook's host is, or resolves to, an address the guard refuses."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries, where the packets would really go."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64 or (ip in _IPV4_COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_kind(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a plain global unicast address (a key of the table in the module
    docstring), or None when it is one.

    >>> address_kind(ipaddress.ip_address("169.254.169.254")), address_kind(
    ...     ipaddress.ip_address("::ffff:10.0.0.1")), address_kind(ipaddress.ip_address("8.8.8.8"))
    ('metadata', 'private', None)
    """
    if ip in METADATA_ADDRESSES:
        return "metadata"
    if isinstance(ip, ipaddress.IPv6Address):
        v4 = _embedded_v4(ip)
        if v4 is not None:
            return address_kind(v4)
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_multicast:
        return "multicast"
    if ip.is_link_local:
        return "link-local"
    if isinstance(ip, ipaddress.IPv4Address) and (ip.is_reserved or ip == _BROADCAST):
        return "reserved"
    ranges: tuple[IPNetwork, ...] = (
        _NOT_GLOBAL_V4 if isinstance(ip, ipaddress.IPv4Address) else _NOT_GLOBAL_V6
    )
    if not ip.is_global or any(ip in net for net in ranges):
        return "private"
    return None


def parse_allow_list(value: str) -> tuple[tuple[IPNetwork, ...], frozenset[str]]:
    """The networks and host names of ``SQLTIDE_WEBHOOK_ALLOWED_NETWORKS``.

    Entries are separated by commas or spaces; each is a network (``10.1.0.0/16``), an
    address (``127.0.0.1``, ``::1``: one-address networks), a host name
    (``hooks.internal``) or a pattern for a domain's sub-domains (``*.corp.example``).

    Raises:
        ValueError: naming an entry that is none of these.
    """
    networks: list[IPNetwork] = []
    hosts: set[str] = set()
    for entry in value.replace(",", " ").split():
        try:
            networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            continue
        except ValueError:
            pass
        name = _normal_host(entry)
        if not _HOST_NAME.match(name) or name.replace(".", "").isdigit():
            raise ValueError(
                f"{entry!r} is neither a network (10.0.0.0/8, ::1) nor a host name "
                "(hooks.internal, *.corp.example)"
            )
        hosts.add(name)
    return tuple(networks), frozenset(hosts)


def _normal_host(host: str) -> str:
    return host.strip().lower().rstrip(".")


@dataclass(frozen=True, slots=True)
class NetworkGuard:
    """The addresses webhooks may reach (see the module docstring for the rules).

    The default guard refuses every address that is not global unicast.
    """

    #: Open loopback, link-local and private addresses (never metadata ones).
    allow_private: bool = False
    #: Networks allowed whatever their addresses are.
    allowed_networks: tuple[IPNetwork, ...] = ()
    #: Host names (or ``*.suffix`` patterns) whose addresses may be private.
    allowed_hosts: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_settings(cls, settings: Settings) -> NetworkGuard:
        """The guard ``SQLTIDE_WEBHOOK_ALLOW_PRIVATE`` and ``..._ALLOWED_NETWORKS`` describe."""
        networks, hosts = parse_allow_list(settings.webhook_allowed_networks)
        return cls(settings.webhook_allow_private, networks, hosts)

    @classmethod
    def from_env(cls) -> NetworkGuard:
        """The guard the environment's ``SQLTIDE_`` settings describe."""
        from sqltide.settings import Settings

        return cls.from_settings(Settings())

    # -- judging ---------------------------------------------------------------------------
    def host_allowed(self, host: str) -> bool:
        """Whether ``host`` is a host name of the allow-list (or matches a ``*.`` pattern)."""
        name = _normal_host(host)
        return name in self.allowed_hosts or any(
            p.startswith("*.") and name.endswith(p[1:]) for p in self.allowed_hosts
        )

    def address_problem(
        self, ip: IPAddress, *, host: str | None = None, host_allowed: bool = False
    ) -> str | None:
        """Why ``ip`` may not be reached (a sentence naming it, and ``host`` when ``ip`` is
        what that name resolves to), or None when it may."""
        candidates: list[IPAddress] = [ip]
        if isinstance(ip, ipaddress.IPv6Address) and (v4 := _embedded_v4(ip)) is not None:
            candidates.append(v4)
        if any(c in net for c in candidates for net in self.allowed_networks):
            return None
        kind = address_kind(ip)
        if kind is None:
            return None
        if kind in _PRIVATE_KINDS and (self.allow_private or host_allowed):
            return None
        opened_by = (
            "SQLTIDE_WEBHOOK_ALLOW_PRIVATE or SQLTIDE_WEBHOOK_ALLOWED_NETWORKS"
            if kind in _PRIVATE_KINDS
            else "SQLTIDE_WEBHOOK_ALLOWED_NETWORKS"
        )
        what = f"{ip} is" if host is None else f"{host} resolves to {ip},"
        return f"{what} {_DESCRIPTIONS[kind]}; webhooks may not reach it (see {opened_by})"

    def name_problem(self, host: str) -> str | None:
        """Why the host name itself is refused (a metadata service's name), or None."""
        name = _normal_host(host)
        if name in METADATA_NAMES and not self.host_allowed(name):
            return f"{name} is a cloud metadata service, which webhooks may not reach"
        return None

    def url_problem(self, url: str) -> str | None:
        """Why a target with this URL may not be created, or None (the create-time check).

        A literal address is judged without any lookup; a host name is resolved and judged
        when it resolves, and passes when it does not (delivery judges it again anyway).
        """
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError) as exc:
            return f"not a valid URL: {exc}"
        if parsed.scheme not in ("http", "https") or not parsed.raw_host:
            return "an http:// or https:// URL with a host"
        host = parsed.raw_host.decode("ascii")
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        try:
            self.resolve(host, port, numeric_only=True)
            return None
        except TargetForbidden as exc:
            return exc.message
        except OSError:
            pass  # not a literal address: a name, resolved below
        try:
            self.resolve(host, port)
        except TargetForbidden as exc:
            return exc.message
        except (OSError, UnicodeError):
            return None  # does not resolve from here (yet): judged at each delivery
        return None

    def resolve(self, host: str, port: int, *, numeric_only: bool = False) -> list[tuple[int, str]]:
        """The (family, address) pairs to connect to for ``host``, every one judged.

        Resolution is ``getaddrinfo``'s, as the HTTP client's would be: it also reads the
        decimal, octal and hex IPv4 forms (``2130706433`` is 127.0.0.1).

        Raises:
            TargetForbidden: the name is refused, or one of its addresses is.
            OSError: the name does not resolve (``socket.gaierror``); with ``numeric_only``,
                also when ``host`` is not a literal address.
        """
        problem = self.name_problem(host)
        if problem:
            raise TargetForbidden(problem)
        flags = socket.AI_NUMERICHOST if numeric_only else 0
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=flags)
        host_allowed = self.host_allowed(host)
        try:
            named = None if ipaddress.ip_address(host) else host  # a literal: named by itself
        except ValueError:
            named = host
        out: list[tuple[int, str]] = []
        for family, _, _, _, sockaddr in infos:
            text = str(sockaddr[0])
            ip = ipaddress.ip_address(text.split("%", 1)[0])
            problem = self.address_problem(ip, host=named, host_allowed=host_allowed)
            if problem:
                raise TargetForbidden(problem)
            if (family, text) not in out:
                out.append((family, text))
        return out


class _GuardedBackend(httpcore.NetworkBackend):
    """httpcore's synchronous backend, connecting only to addresses the guard has judged."""

    def __init__(self, guard: NetworkGuard) -> None:
        self._guard = guard
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = self._guard.resolve(host, port)
        except socket.gaierror as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        last: Exception | None = None
        for _, address in addresses:
            try:
                # a literal address: the inner backend's getaddrinfo makes no DNS query
                return self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None  # getaddrinfo never answers an empty list
        raise last

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise TargetForbidden("webhooks do not connect to Unix sockets")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class GuardedTransport(httpx.HTTPTransport):
    """An :class:`httpx.HTTPTransport` whose every connection goes through the guard.

    It ignores proxy environment variables (``HTTP_PROXY`` ...): a proxy would resolve and
    connect on its own, out of the guard's sight.
    """

    def __init__(
        self, guard: NetworkGuard, *, verify: bool = True, limits: httpx.Limits | None = None
    ) -> None:
        limits = limits or httpx.Limits(max_connections=100, max_keepalive_connections=20)
        super().__init__(verify=verify, trust_env=False, limits=limits)
        # HTTPTransport keeps all its state in its pool: swap it for one with our backend
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_GuardedBackend(guard),
        )
        self.guard = guard


def guarded_client(guard: NetworkGuard, *, timeout: float | None = None) -> httpx.Client:
    """An :class:`httpx.Client` for webhooks: guarded, never following redirects."""
    return httpx.Client(
        transport=GuardedTransport(guard),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
    )
