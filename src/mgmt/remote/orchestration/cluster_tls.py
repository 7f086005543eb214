"""TLS for the traffic between a detached cluster's etcd members.

The members talk raft to each other over the hosts' network; each gets a
certificate for its address, signed by a CA made for this cluster alone, and
etcd is told to accept only peers that show one (``--peer-client-cert-auth``).
The CA's key is never written anywhere: once the members have their
certificates nobody can make another, so no host outside the cluster can join
it. (Agents reach the members' client port with the cluster's user and
password: mgmt.remote.orchestration.cluster.)

Made with ``cryptography``, which the initiator has already (paramiko needs it);
nothing of it is shipped to the hosts, which only get PEM files.
"""

import datetime
import ipaddress
from typing import Dict, List, NamedTuple, Optional

VALID_DAYS = 3650  # a cluster lives as long as it is not stopped


class MemberTLS(NamedTuple):
    """PEM text for one member: the cluster's CA certificate, its own, its key."""

    ca: str
    cert: str
    key: str


def member_certificates(
    cluster: str, addresses: Dict[str, str], earliest_clock: Optional[float] = None
) -> Dict[str, MemberTLS]:
    """A CA named after ``cluster``, and a certificate per member (name -> address),
    valid from an hour before now, or before ``earliest_clock`` (a POSIX time: the
    clock of the host furthest behind) if that is earlier: a member whose clock is
    behind the initiator's would take its peers' certificates for not yet valid,
    and the cluster would never get a quorum."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    earliest = now
    if earliest_clock is not None:
        earliest = min(now, datetime.datetime.fromtimestamp(earliest_clock, datetime.timezone.utc))
    start, end = earliest - datetime.timedelta(hours=1), now + datetime.timedelta(days=VALID_DAYS)

    def name(text: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])

    def pem_key(key) -> str:
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(name(f"{cluster} CA"))
        .issuer_name(name(f"{cluster} CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM).decode()
    found: Dict[str, MemberTLS] = {}
    for member, address in addresses.items():
        key = ec.generate_private_key(ec.SECP256R1())
        sans: List[x509.GeneralName] = [_address_name(x509, ipaddress, address)]
        cert = (
            x509.CertificateBuilder()
            .subject_name(name(f"{cluster} {member}"))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        found[member] = MemberTLS(
            ca_pem, cert.public_bytes(serialization.Encoding.PEM).decode(), pem_key(key)
        )
    return found


def _address_name(x509, ipaddress, address: str):
    """An IP address SAN, or a DNS one for a name (--cluster-address HOST=NAME)."""
    try:
        return x509.IPAddress(ipaddress.ip_address(address))
    except ValueError:
        return x509.DNSName(address)
