"""The fix a failed probe handshake suggests, chosen by OpenSSL's reason
(the reasons as OpenSSL 3 words them), spelled for the command line or a plan."""
from __future__ import annotations

import pytest

from surge.run.probe import hint


@pytest.mark.parametrize("reason, expected", [
    ("certificate verify failed (self-signed certificate)", "use --cacert FILE or --insecure"),
    ("certificate verify failed (self signed certificate in certificate chain)", "use --cacert FILE or --insecure"),
    ("certificate verify failed (unable to get local issuer certificate)", "use --cacert FILE or --insecure"),
    ("certificate verify failed (hostname mismatch)", "use --sni NAME (a name the certificate is for) or --insecure"),
    ("certificate verify failed (IP address mismatch)", "use --sni NAME (a name the certificate is for) or --insecure"),
    ("certificate verify failed (certificate has expired)",
     "the server's certificate is outside its validity dates (check it, and this machine's clock), or use --insecure"),
    ("tlsv13 alert certificate required", "the server wants a client certificate it trusts: use --cert FILE --key FILE"),
    ("wrong version number", "is this port HTTPS? (a plain HTTP server answers like this: use http://)"),
    ("tlsv1 alert protocol version", "the server and these options share no protocol version, cipher or group: "
                                     "check --tls-min/--tls-max, --ciphers, --tls13-ciphers and --groups"),
    ("no handshake answer within 5 s", "the server did not finish the handshake in time (raise --timeout, or check "
                                       "the server)"),
    ("something new", None),
])
def test_the_hint_follows_the_reason(reason, expected):
    assert hint(reason) == expected


def test_a_plan_gets_its_own_spelling():
    assert hint("certificate verify failed (self-signed certificate)", "plan") == \
        "use tls: cacert or tls: insecure: true"
    assert hint("certificate verify failed (hostname mismatch)", "plan") == \
        "use tls: sni (a name the certificate is for) or tls: insecure: true"
