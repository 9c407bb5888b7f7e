"""Tests for shared.repo_url: examples for every rule, plus hypothesis properties."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.repo_url import InvalidRepoUrl, is_public_address, normalize_repo_url

ACCEPTED = [
    ("https://github.com/psf/requests", "https://github.com/psf/requests"),
    ("https://github.com/psf/requests.git", "https://github.com/psf/requests"),
    ("https://github.com/psf/requests/", "https://github.com/psf/requests"),
    ("https://github.com/psf/requests.git/", "https://github.com/psf/requests"),
    ("HTTPS://GitHub.COM/Psf/Requests", "https://github.com/Psf/Requests"),
    ("https://github.com./psf/requests", "https://github.com/psf/requests"),
    ("github.com/psf/requests", "https://github.com/psf/requests"),
    ("GitHub.com/psf/requests.git", "https://github.com/psf/requests"),
    ("gitlab.com/group/sub/repo", "https://gitlab.com/group/sub/repo"),
    ("https://gitlab.com/group/sub/deeper/repo.git", "https://gitlab.com/group/sub/deeper/repo"),
    ("https://github.com:443/psf/requests", "https://github.com/psf/requests"),
    ("http://example.org:80/team/repo", "http://example.org/team/repo"),
    ("http://example.org:443/team/repo", "http://example.org:443/team/repo"),
    ("https://git.example.org:8443/team/repo", "https://git.example.org:8443/team/repo"),
    ("https://git.example.org:08443/team/repo", "https://git.example.org:8443/team/repo"),
    ("http://git.example.org/team/repo", "http://git.example.org/team/repo"),
    ("https://bitbucket.org/owner/repo_name-1.2", "https://bitbucket.org/owner/repo_name-1.2"),
    ("https://8.8.8.8/owner/repo", "https://8.8.8.8/owner/repo"),
    ("https://0x08080808/owner/repo", "https://8.8.8.8/owner/repo"),
    ("https://[2606:4700:0::1]/owner/repo", "https://[2606:4700::1]/owner/repo"),
    ("https://[::ffff:8.8.8.8]/owner/repo", "https://[::ffff:808:808]/owner/repo"),
    ("https://xn--bcher-kva.example/owner/repo", "https://xn--bcher-kva.example/owner/repo"),
    ("https://example.org/owner/repo%C3%BC", "https://example.org/owner/repo%C3%BC"),
    ("https://example.org/owner", "https://example.org/owner"),
]


@pytest.mark.parametrize(("raw", "expected"), ACCEPTED)
def test_accepted(raw: str, expected: str) -> None:
    assert normalize_repo_url(raw) == expected
    assert normalize_repo_url(expected) == expected  # idempotent


LOCAL_ACCEPTED = [
    ("/srv/repos/x", "file:///srv/repos/x"),
    ("/srv/repos/x/", "file:///srv/repos/x"),
    ("/srv/repos/x.git", "file:///srv/repos/x.git"),  # a bare repo dir keeps its name
    ("file:///srv/repos/x", "file:///srv/repos/x"),
    ("/home/me/My Projects/x", "file:///home/me/My Projects/x"),  # a space, inside
    ("FILE:///srv/repos/x/", "file:///srv/repos/x"),
]


@pytest.mark.parametrize(("raw", "expected"), LOCAL_ACCEPTED)
def test_local_paths_with_allow_local(raw: str, expected: str) -> None:
    assert normalize_repo_url(raw, allow_local=True) == expected
    assert normalize_repo_url(expected, allow_local=True) == expected


@pytest.mark.parametrize("raw", [raw for raw, _ in LOCAL_ACCEPTED])
def test_local_paths_rejected_by_default(raw: str) -> None:
    with pytest.raises(InvalidRepoUrl, match="ALLOW_LOCAL_REPOS"):
        normalize_repo_url(raw)


@pytest.mark.parametrize(
    "raw",
    [
        "srv/repos/x",
        "./repos/x",
        "../repos/x",
        "~/repos/x",
        "/srv/../etc/x",
        "/srv/./x",
        "/srv//x",
        "/",
        "/srv/-x",
        "/srv/%2e%2e/x",
        "file://host/srv/x",
        "file:/srv/x",
        "file:///srv/../x",
        "http://127.0.0.1/x",
        "https://localhost/x",
        "/srv/x ",  # a space at the end
        "/srv/a\tb",  # whitespace other than a space
        "https://github.com/o/r x",  # spaces are for local paths only
    ],
)
def test_local_mode_still_rejects(raw: str) -> None:
    with pytest.raises(InvalidRepoUrl):
        normalize_repo_url(raw, allow_local=True)


# (input, a fragment the message must contain)
REJECTED = [
    # input size
    ("", "empty"),
    ("https://github.com/o/" + "r" * 1024, "longer than 1024"),
    # control characters and whitespace, raw and percent-encoded
    ("https://github.com/o/r\x00", "control character"),
    ("https://github.com/o/r\n", "control character"),
    (" https://github.com/o/r", "whitespace"),
    ("https://github.com/o/r x", "whitespace"),
    ("https://github.com/o/r\u200b", "control character"),
    ("https://github.com/o/r%00", "not allowed"),
    ("https://github.com/o/r%0a", "not allowed"),
    ("https://github.com/o/r%20x", "not allowed"),
    ("https://github.com/o/r%ff", "percent-encoding"),
    ("https://github.com/o/r%zz", "not allowed"),
    # schemes
    ("ssh://git@github.com/o/r", "scheme 'ssh'"),
    ("ssh://github.com/o/r", "scheme 'ssh'"),
    ("git://github.com/o/r", "scheme 'git'"),
    ("ext::sh -c touch% /tmp/pwned", "whitespace"),
    ("ext::sh", "scheme 'ext'"),
    ("fd::17", "scheme 'fd'"),
    ("javascript:alert(1)", "scheme 'javascript'"),
    ("ftp://example.org/o/r", "scheme 'ftp'"),
    ("file:///etc/passwd", "ALLOW_LOCAL_REPOS"),
    ("/etc/passwd", "ALLOW_LOCAL_REPOS"),
    ("git@github.com:owner/repo", "SSH"),
    ("github.com:owner/repo", "SSH"),
    ("https:github.com/o/r", "https://"),
    ("psf/requests", "https://host/owner/repo"),
    ("github.com:443/psf/requests", "SSH"),
    # git option injection
    ("--upload-pack=touch /tmp/pwned", "whitespace"),
    ("--upload-pack=evil", "'-'"),
    ("-oProxyCommand=evil", "'-'"),
    ("https://github.com/--upload-pack=evil/r", "'-'"),
    ("https://github.com/o/-r", "'-'"),
    ("https://github.com/o/%2dr", "'-'"),
    # credentials
    ("https://user@github.com/o/r", "credentials"),
    ("https://user:hunter2@github.com/o/r", "credentials"),
    ("user:hunter2@github.com/o/r", "credentials"),
    # queries, fragments, backslashes
    ("https://github.com/o/r?ref=main", "query"),
    ("https://github.com/o/r#readme", "fragment"),
    ("https://github.com\\@evil.com/o/r", "backslash"),
    ("https://github.com/o\\r", "backslash"),
    # dot segments and empty paths
    ("https://github.com/o/../r", "'..'"),
    ("https://github.com/o/./r", "'.'"),
    ("https://github.com/o/%2e%2e/r", "'..'"),
    ("https://github.com/o/%2E%2e", "'..'"),
    ("https://github.com/o/.%2e/r", "'..'"),
    ("https://github.com", "name a repository"),
    ("https://github.com/", "name a repository"),
    ("https://github.com/.git", "name a repository"),
    ("https://github.com//o/r", "empty segment"),
    ("https://github.com/o%2fr", "not allowed"),
    # malformed hosts and ports
    ("https:///o/r", "no host"),
    ("https://exa_mple.com/o/r", "not a valid domain name"),
    ("https://-github.com/o/r", "not a valid domain name"),
    ("https://github..com/o/r", "not a valid domain name"),
    ("https://" + "a" * 64 + ".com/o/r", "not a valid domain name"),
    ("https://" + ".".join(["a" * 60] * 5) + ".com/o/r", "not a valid domain name"),
    ("https://b\u00fccher.example/o/r", "punycode"),
    ("https://github.com:0/o/r", "port"),
    ("https://github.com:99999/o/r", "port"),
    ("https://github.com:abc/o/r", "port"),
    ("https://github.com:/o/r", "port"),
    ("https://github.123/o/r", "not a valid IPv4"),
    ("https://1.2.3.4.5/o/r", "not a valid IPv4"),
    ("https://256.0.0.1/o/r", "not a valid IPv4"),
    ("https://09.0.0.1/o/r", "not a valid IPv4"),
    ("https://1.2.3.0x100/o/r", "not a valid IPv4"),
    ("https://example.0x1/o/r", "not a valid IPv4"),
    ("https://github.com%2eevil.com/o/r", "not a valid domain name"),
    ("https://127.0.0.%31/o/r", "not a valid"),
    # 127.0.0.1 in every notation
    ("http://127.0.0.1/o/r", "loopback"),
    ("http://127.0.0.1./o/r", "loopback"),
    ("http://2130706433/o/r", "loopback"),
    ("http://0x7f000001/o/r", "loopback"),
    ("http://0X7F000001/o/r", "loopback"),
    ("http://0x7f.0.0.1/o/r", "loopback"),
    ("http://0177.0.0.1/o/r", "loopback"),
    ("http://017700000001/o/r", "loopback"),
    ("http://127.1/o/r", "loopback"),
    ("http://127.0.1/o/r", "loopback"),
    ("http://0x7f.1/o/r", "loopback"),
    ("http://0177.0x0.00.1/o/r", "loopback"),
    ("127.0.0.1/o/r", "loopback"),
    ("127.1/o/r", "loopback"),
    ("http://127.0.0.1:8080/o/r", "loopback"),
    ("http://[::ffff:127.0.0.1]:8080/o/r", "loopback"),
    ("http://127.255.255.254/o/r", "loopback"),
    # 169.254.169.254 (cloud metadata) in every notation
    ("http://169.254.169.254/latest/meta-data", "link-local"),
    ("http://2852039166/latest/meta-data", "link-local"),
    ("http://0xa9fea9fe/latest/meta-data", "link-local"),
    ("http://0xa9.0xfe.0xa9.0xfe/latest/meta-data", "link-local"),
    ("http://0251.0376.0251.0376/latest/meta-data", "link-local"),
    ("http://025177524776/latest/meta-data", "link-local"),
    ("http://169.254.43518/latest/meta-data", "link-local"),
    ("http://169.16689662/latest/meta-data", "link-local"),
    ("http://0xa9.0376.43518/latest/meta-data", "link-local"),
    # other non-public IPv4
    ("http://10.0.0.1/o/r", "private"),
    ("http://10.1/o/r", "private"),
    ("http://172.16.0.1/o/r", "private"),
    ("http://172.31.255.255/o/r", "private"),
    ("http://192.168.1.1/o/r", "private"),
    ("http://100.64.0.1/o/r", "carrier-grade NAT"),
    ("http://0.0.0.0/o/r", "unspecified"),
    ("http://0/o/r", "unspecified"),
    ("http://0.1.2.3/o/r", "private"),
    ("http://224.0.0.1/o/r", "multicast"),
    ("http://239.255.255.250/o/r", "multicast"),
    ("http://240.0.0.1/o/r", "reserved"),
    ("http://255.255.255.255/o/r", "reserved"),
    ("http://192.0.2.1/o/r", "private"),
    # IPv6
    ("http://[::1]/o/r", "loopback"),
    ("http://[::]/o/r", "unspecified"),
    ("http://[0:0:0:0:0:0:0:1]/o/r", "loopback"),
    ("http://[fc00::1]/o/r", "private"),
    ("http://[fd12:3456::1]/o/r", "private"),
    ("http://[fe80::1]/o/r", "link-local"),
    ("http://[fe80::1%25eth0]/o/r", "zone id"),
    ("http://[ff02::1]/o/r", "multicast"),
    ("http://[::ffff:127.0.0.1]/o/r", "127.0.0.1"),
    ("http://[::ffff:7f00:1]/o/r", "127.0.0.1"),
    ("http://[::FFFF:A9FE:A9FE]/o/r", "169.254.169.254"),
    ("http://[::ffff:10.0.0.1]/o/r", "private"),
    ("http://[::127.0.0.1]/o/r", "127.0.0.1"),
    ("http://[::a9fe:a9fe]/o/r", "169.254.169.254"),
    ("http://[64:ff9b::127.0.0.1]/o/r", "127.0.0.1"),
    ("http://[64:ff9b::a9fe:a9fe]/o/r", "169.254.169.254"),
    ("http://[64:ff9b:1::8.8.8.8]/o/r", "NAT64"),
    ("http://[2002:7f00:1::]/o/r", "127.0.0.1"),
    ("http://[2002:c0a8:101::1]/o/r", "192.168.1.1"),
    ("http://[2001:db8::1]/o/r", "private"),
    ("http://[::1/o/r", "not a valid IPv6"),
    ("http://[::1]x/o/r", "port"),
    ("http://[1.2.3.4]/o/r", "not a valid IPv6"),
    ("http://[]/o/r", "not a valid IPv6"),
    ("http://::1/o/r", "not a valid"),
    # local names
    ("https://localhost/o/r", "local name"),
    ("https://LOCALHOST./o/r", "local name"),
    ("https://localhost:3000/o/r", "local name"),
    ("https://git.localhost/o/r", "local name"),
    ("https://nas.local/o/r", "local name"),
    ("https://nas.local./o/r", "local name"),
    ("https://metadata.google.internal/computeMetadata", "local name"),
    ("https://router.home.arpa/o/r", "local name"),
    ("https://home.arpa/o/r", "local name"),
    ("https://git.lan/o/r", "local name"),
    ("https://gitserver/o/r", "fully qualified"),
    ("localhost/o/r", "https://host/owner/repo"),
    ("localhost.localdomain/o/r", "local name"),
]


@pytest.mark.parametrize(("raw", "reason"), REJECTED)
def test_rejected(raw: str, reason: str) -> None:
    with pytest.raises(InvalidRepoUrl) as info:
        normalize_repo_url(raw)
    assert reason.lower() in str(info.value).lower()


@pytest.mark.parametrize(
    "raw",
    [
        "https://alice:hunter2@github.com/o/r",
        "alice:hunter2@github.com/o/r",
        "ssh://alice:hunter2@github.com/o/r",
        "https://alice:hunter2@127.0.0.1/o/r",
    ],
)
def test_message_never_echoes_password(raw: str) -> None:
    with pytest.raises(InvalidRepoUrl) as info:
        normalize_repo_url(raw)
    assert "hunter2" not in str(info.value)


def test_messages_are_one_sentence() -> None:
    for raw, _ in REJECTED:
        with pytest.raises(InvalidRepoUrl) as info:
            normalize_repo_url(raw)
        message = str(info.value)
        assert message and "\n" not in message and len(message) < 1200


def test_needs_no_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_dns(*args: object, **kwargs: object) -> None:
        raise AssertionError("normalize_repo_url must not resolve names")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    monkeypatch.setattr(socket, "gethostbyname", no_dns)
    assert normalize_repo_url("github.com/psf/requests") == "https://github.com/psf/requests"
    assert normalize_repo_url("https://git.no-dns.example/o/r") == "https://git.no-dns.example/o/r"


def test_non_string_input_is_rejected() -> None:
    with pytest.raises(InvalidRepoUrl):
        normalize_repo_url(None)  # type: ignore[arg-type]


def test_invalid_repo_url_is_a_value_error() -> None:
    assert issubclass(InvalidRepoUrl, ValueError)


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("140.82.121.4", True),
        ("2606:4700::1111", True),
        ("2a00:1450:4001::200e", True),
        ("::ffff:8.8.8.8", True),
        ("2002:808:808::1", True),
        ("127.0.0.1", False),
        ("127.8.9.10", False),
        ("10.0.0.1", False),
        ("172.16.5.4", False),
        ("192.168.0.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.251", False),
        ("240.0.0.1", False),
        ("255.255.255.255", False),
        ("192.0.2.1", False),
        ("::1", False),
        ("::", False),
        ("fc00::1", False),
        ("fd00::1", False),
        ("fe80::1", False),
        ("fe80::1%eth0", False),
        ("ff02::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:7f00:1", False),
        ("::ffff:169.254.169.254", False),
        ("::127.0.0.1", False),
        ("64:ff9b::a9fe:a9fe", False),
        ("64:ff9b:1::1", False),
        ("2002:7f00:1::1", False),
        ("2001:db8::1", False),
        ("", False),
        ("localhost", False),
        ("2130706433", False),
        ("0x7f000001", False),
        ("127.1", False),
        ("not an address", False),
    ],
)
def test_is_public_address(address: str, public: bool) -> None:
    assert is_public_address(address) is public


# --- hypothesis -------------------------------------------------------------

NON_PUBLIC_V4 = [
    "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16",
    "100.64.0.0/10", "0.0.0.0/8", "224.0.0.0/4", "240.0.0.0/4", "192.0.2.0/24", "198.18.0.0/15",
]


@st.composite
def non_public_ipv4(draw: st.DrawFn) -> int:
    network = ipaddress.IPv4Network(draw(st.sampled_from(NON_PUBLIC_V4)))
    return int(network.network_address) + draw(st.integers(0, network.num_addresses - 1))


@st.composite
def ipv4_notation(draw: st.DrawFn, value: int) -> str:
    """Render value the way WHATWG/libc read IPv4: 1-4 parts, each decimal, hex or octal."""
    count = draw(st.integers(1, 4))
    octets = value.to_bytes(4, "big")
    parts = list(octets[: count - 1]) + [int.from_bytes(octets[count - 1 :], "big")]

    def render(number: int) -> str:
        style = draw(st.sampled_from(["dec", "hex", "HEX", "oct"]))
        if style == "hex":
            return f"0x{number:x}"
        if style == "HEX":
            return f"0X{number:X}"
        return f"0{number:o}" if style == "oct" else str(number)

    host = ".".join(render(p) for p in parts)
    return host + draw(st.sampled_from(["", "."]))


@settings(max_examples=300)
@given(st.data())
def test_non_public_ipv4_in_any_notation_is_rejected(data: st.DataObject) -> None:
    value = data.draw(non_public_ipv4())
    host = data.draw(ipv4_notation(value))
    scheme = data.draw(st.sampled_from(["http://", "https://", "HTTPS://", ""]))
    port = data.draw(st.sampled_from(["", ":443", ":8080"]))
    with pytest.raises(InvalidRepoUrl):
        normalize_repo_url(f"{scheme}{host}{port}/owner/repo")
    assert not is_public_address(str(ipaddress.IPv4Address(value)))


@settings(max_examples=200)
@given(st.data())
def test_non_public_ipv4_embedded_in_ipv6_is_rejected(data: st.DataObject) -> None:
    v4 = ipaddress.IPv4Address(data.draw(non_public_ipv4()))
    form = data.draw(st.sampled_from(["::ffff:{}", "::{}", "64:ff9b::{}", "::ffff:{hex}", "2002:{hex}::1"]))
    hex_v4 = f"{int(v4) >> 16:x}:{int(v4) & 0xFFFF:x}"
    address = form.format(v4, hex=hex_v4)
    with pytest.raises(InvalidRepoUrl):
        normalize_repo_url(f"https://[{address}]/owner/repo")
    assert not is_public_address(address)


PUBLIC_V4 = st.lists(st.integers(0, 255), min_size=4, max_size=4).map(
    lambda octets: ipaddress.IPv4Address(bytes(octets))
).filter(lambda address: address.is_global and not address.is_multicast)  # 3.11 calls 224/4 global


@settings(max_examples=200)
@given(PUBLIC_V4)
def test_public_ipv4_dotted_is_accepted(address: ipaddress.IPv4Address) -> None:
    assert normalize_repo_url(f"https://{address}/owner/repo") == f"https://{address}/owner/repo"
    assert is_public_address(str(address))


NAME = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,30}", fullmatch=True)


@settings(max_examples=200)
@given(
    host=st.sampled_from(["github.com", "GitHub.com", "gitlab.com", "bitbucket.org", "codeberg.org"]),
    prefix=st.sampled_from(["https://", "HTTPS://", ""]),
    names=st.lists(NAME, min_size=1, max_size=4),
    port=st.sampled_from(["", ":443"]),
    suffix=st.sampled_from(["", "/", ".git", ".git/"]),
)
def test_normalisation_is_idempotent(
    host: str, prefix: str, port: str, names: list[str], suffix: str
) -> None:
    port = port if prefix else ""  # host:port/... without a scheme is git's scp syntax
    result = normalize_repo_url(f"{prefix}{host}{port}/" + "/".join(names) + suffix)
    assert result.startswith(f"https://{host.lower()}/")
    assert not result.endswith((".git", "/"))
    assert normalize_repo_url(result) == result


@settings(max_examples=500)
@given(st.text())
def test_arbitrary_text_never_crashes(raw: str) -> None:
    for allow_local in (False, True):
        try:
            result = normalize_repo_url(raw, allow_local=allow_local)
        except InvalidRepoUrl:
            continue
        assert result.startswith(("http://", "https://", "file:///" if allow_local else "https://"))
        assert normalize_repo_url(result, allow_local=allow_local) == result


URLISH = st.text(alphabet="abcxyz0123456789.-_/:@[]%~+HTTPSgithub", max_size=40)


@settings(max_examples=500)
@given(st.sampled_from(["https://", "http://", "", "github.com/", "https://github.com/"]), URLISH)
def test_urlish_text_never_crashes(prefix: str, tail: str) -> None:
    try:
        result = normalize_repo_url(prefix + tail)
    except InvalidRepoUrl:
        return
    assert result.startswith(("http://", "https://"))
    assert result.isascii()
    assert normalize_repo_url(result) == result


@settings(max_examples=200)
@given(
    st.text(max_size=50),
    st.characters(categories=["Cc"]),
    st.text(max_size=50),
    st.booleans(),
)
def test_control_characters_are_rejected(before: str, control: str, after: str, allow_local: bool) -> None:
    for raw in (before + control + after, f"https://github.com/o/r{control}", f"github.com/o{control}/r"):
        with pytest.raises(InvalidRepoUrl):
            normalize_repo_url(raw, allow_local=allow_local)
