"""Parsing `redis+sentinel://` URLs, the Sentinel form of `Client.from_url`.

The syntax is

    redis+sentinel://[user:password@]host:port[,host2:port2...]/service_name[/db]
        [?sentinel_username=NAME&sentinel_password=SECRET]

The hosts are Sentinels, not Redis servers; a host without a port uses 26379, and an IPv6
address goes in brackets (`[::1]:26379`). `service_name` is the name of the primary in the
Sentinels' `sentinel monitor` line, and `db` defaults to 0. The user and password of the URL
authenticate to the primary. The Sentinels get no credentials unless the query gives
`sentinel_password` (and `sentinel_username` for an ACL user). User names and passwords are
percent-decoded.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

SENTINEL_SCHEME = "redis+sentinel"
DEFAULT_SENTINEL_PORT = 26379

_QUERY_OPTIONS = ("sentinel_username", "sentinel_password")
SYNTAX = (
    "redis+sentinel://[user:password@]host:port[,host2:port2]/service_name[/db]"
    "[?sentinel_password=...]"
)


@dataclass(frozen=True)
class SentinelURL:
    """The parts of a `redis+sentinel://` URL."""

    sentinels: list[tuple[str, int]]
    service_name: str
    db: int
    username: str | None
    password: str | None
    sentinel_username: str | None
    sentinel_password: str | None


def is_sentinel_url(url: str) -> bool:
    return url.lower().startswith(SENTINEL_SCHEME + "://")


def parse_sentinel_url(url: str) -> SentinelURL:
    """Split a `redis+sentinel://` URL into its parts.

    Raises ValueError for an invalid URL. The message never quotes the user part or the query,
    which may contain passwords.
    """
    if not is_sentinel_url(url):
        raise ValueError(f"the scheme is not {SENTINEL_SCHEME}://")
    try:
        parts = urlsplit(url)
    except ValueError as error:
        raise ValueError(f"the URL cannot be parsed ({error})") from None
    if parts.fragment:
        raise ValueError("a fragment (#...) is not allowed")

    credentials, _, hosts = parts.netloc.rpartition("@")
    username, password = _credentials(credentials)
    sentinels = [_address(host) for host in hosts.split(",")]
    service_name, db = _path(parts.path)
    options = _query(parts.query)
    return SentinelURL(
        sentinels=sentinels,
        service_name=service_name,
        db=db,
        username=username,
        password=password,
        sentinel_username=options.get("sentinel_username"),
        sentinel_password=options.get("sentinel_password"),
    )


def _credentials(text: str) -> tuple[str | None, str | None]:
    if not text:
        return None, None
    username, has_password, password = text.partition(":")
    return unquote(username) or None, unquote(password) if has_password else None


def _address(text: str) -> tuple[str, int]:
    if not text:
        raise ValueError("a Sentinel address is missing: list host:port pairs separated by commas")
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"invalid Sentinel address {text!r}: write IPv6 as [::1]:26379")
        port_text = rest[1:] if rest else ""
    else:
        host, _, port_text = text.partition(":")
    if not host:
        raise ValueError(f"invalid Sentinel address {text!r}: the host is missing")
    if not port_text:
        return host, DEFAULT_SENTINEL_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"invalid port in Sentinel address {text!r}")
    return host, int(port_text)


def _path(path: str) -> tuple[str, int]:
    segments = path.strip("/").split("/") if path.strip("/") else []
    if not segments:
        raise ValueError("the service name is missing: add /service_name after the Sentinels")
    if len(segments) > 2:
        raise ValueError(f"invalid path {path!r}: expected /service_name or /service_name/db")
    service_name = unquote(segments[0])
    if len(segments) == 1:
        return service_name, 0
    if not segments[1].isdigit():
        raise ValueError(f"invalid database number {segments[1]!r}: expected an integer")
    return service_name, int(segments[1])


def _query(query: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name not in _QUERY_OPTIONS:
            raise ValueError(
                f"unknown option {name!r} in the query: only {', '.join(_QUERY_OPTIONS)} are "
                "accepted; pass other connection options as keyword arguments"
            )
        options[name] = value
    return options
