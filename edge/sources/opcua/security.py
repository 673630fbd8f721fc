"""OPC UA security of one source: secure channel (policy + mode), user identity, and the
clear errors a plant engineer can act on.

Before every connect the server's endpoints are read (over an unsecured discovery channel,
as the standard intends), the one matching the register's policy and mode is chosen, and
the server's certificate is checked against our trusted folder *before* anything secret is
sent. asyncua then opens the secure channel with our application certificate.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass
from pathlib import Path

from asyncua import ua
from asyncua.client.client import Client
from asyncua.crypto import security_policies
from asyncua.ua.status_codes import StatusCodes
from asyncua.ua.uaerrors import UaStatusCodeError
from pydantic import SecretStr

from common.protocols.opcua import CertificateIdentity, OpcUaSecurity, UsernameIdentity
from common.protocols.opcua import OpcUaSource as OpcUaSourceConfig
from edge.sources.opcua.pki import ApplicationPki, UntrustedServerCertificate

log = logging.getLogger(__name__)

POLICIES: dict[str, type[security_policies.SecurityPolicy]] = {
    "Basic256Sha256": security_policies.SecurityPolicyBasic256Sha256,
    "Aes128_Sha256_RsaOaep": security_policies.SecurityPolicyAes128Sha256RsaOaep,
    "Aes256_Sha256_RsaPss": security_policies.SecurityPolicyAes256Sha256RsaPss,
}
_POLICY_PREFIX = "http://opcfoundation.org/UA/SecurityPolicy#"

_CERTIFICATE_REFUSED = {
    StatusCodes.BadCertificateUntrusted,
    StatusCodes.BadSecurityChecksFailed,
    StatusCodes.BadCertificateInvalid,
    StatusCodes.BadCertificateUriInvalid,
    StatusCodes.BadCertificateUseNotAllowed,
    StatusCodes.BadCertificateTimeInvalid,
    StatusCodes.BadCertificateRevoked,
    StatusCodes.BadCertificateIssuerRevocationUnknown,
    StatusCodes.BadCertificateRevocationUnknown,
}
_IDENTITY_REFUSED = {
    StatusCodes.BadUserAccessDenied,
    StatusCodes.BadIdentityTokenRejected,
    StatusCodes.BadIdentityTokenInvalid,
    StatusCodes.BadUserSignatureInvalid,
}


class SecurityError(Exception):
    """A security failure already phrased for the person who has to fix it."""


class NoMatchingEndpoint(SecurityError):
    pass


def policy_name(uri: str) -> str:
    return uri.removeprefix(_POLICY_PREFIX)


def describe_offers(endpoints: list[ua.EndpointDescription]) -> str:
    """``Basic256Sha256/SignAndEncrypt (username, anonymous), None/None (anonymous)``."""
    offers: list[str] = []
    for endpoint in endpoints:
        tokens = ", ".join(
            sorted({_token_name(t.TokenType) for t in endpoint.UserIdentityTokens or []})
        )
        offer = f"{policy_name(endpoint.SecurityPolicyUri)}/{endpoint.SecurityMode.name} ({tokens})"
        if offer not in offers:
            offers.append(offer)
    return ", ".join(offers) or "nothing"


def _token_name(token_type: ua.UserTokenType) -> str:
    return {
        ua.UserTokenType.Anonymous: "anonymous",
        ua.UserTokenType.UserName: "username",
        ua.UserTokenType.Certificate: "certificate",
    }.get(token_type, token_type.name)


@dataclass(frozen=True)
class ClientSecurity:
    """Everything a connection of one source needs to secure its session."""

    source_id: str
    config: OpcUaSecurity
    pki: ApplicationPki
    password: SecretStr | None = None
    user_cert_file: Path | None = None
    user_key_file: Path | None = None

    @property
    def token_type(self) -> ua.UserTokenType:
        if isinstance(self.config.identity, UsernameIdentity):
            return ua.UserTokenType.UserName
        if isinstance(self.config.identity, CertificateIdentity):
            return ua.UserTokenType.Certificate
        return ua.UserTokenType.Anonymous

    async def prepare(self) -> None:
        """Our application certificate, made on first start when the policy needs one."""
        if self.config.policy != "None":
            await self.pki.own_certificate()

    async def apply(self, client: Client, endpoint_url: str) -> None:
        """Configure ``client`` (not yet connected) for this source's security."""
        client.application_uri = self.pki.application_uri
        if self.config.policy != "None":
            await self._secure_channel(client, endpoint_url)
        identity = self.config.identity
        if isinstance(identity, UsernameIdentity):
            assert self.password is not None  # checked at start-up
            client.set_user(identity.username)
            client.set_password(self.password.get_secret_value())
        elif isinstance(identity, CertificateIdentity):
            assert self.user_cert_file is not None and self.user_key_file is not None
            await client.load_client_certificate(str(self.user_cert_file))
            await client.load_private_key(self.user_key_file)

    async def _secure_channel(self, client: Client, endpoint_url: str) -> None:
        policy = POLICIES[self.config.policy]
        mode = ua.MessageSecurityMode[self.config.mode]
        own = await self.pki.own_certificate()
        endpoints = await client.connect_and_get_server_endpoints()
        chosen = [
            e for e in endpoints if e.SecurityPolicyUri == policy.URI and e.SecurityMode == mode
        ]
        if not chosen:
            raise NoMatchingEndpoint(
                f"OPC UA source {self.source_id}: {endpoint_url} offers no endpoint with "
                f"policy {self.config.policy} and mode {self.config.mode}; it offers "
                f"{describe_offers(endpoints)}. Set the source's 'security' in the register "
                "to one of these (or enable that policy on the server)"
            )
        matching = [
            e
            for e in chosen
            if any(t.TokenType == self.token_type for t in e.UserIdentityTokens or [])
        ]
        if not matching:
            raise NoMatchingEndpoint(
                f"OPC UA source {self.source_id}: {endpoint_url} does not accept the identity "
                f"{_token_name(self.token_type)} with {self.config.policy}/{self.config.mode}; "
                f"it offers {describe_offers(chosen)}"
            )
        server_der = _first_certificate(matching[0].ServerCertificate)
        await self.pki.check_server(server_der)
        await client.set_security(
            policy,
            str(own.cert_file),
            str(own.key_file),
            server_certificate=server_der,
            mode=mode,
        )

    def explain(self, exc: BaseException, endpoint_url: str) -> str | None:
        """A security failure in words that say what to do; None for any other failure."""
        where = f"{endpoint_url}"
        if isinstance(exc, SecurityError):
            return str(exc)
        if isinstance(exc, UntrustedServerCertificate):
            return f"{where}: {exc}"
        if self.config.policy != "None" and _open_secure_channel_fault(exc):
            return self._certificate_refused(where, "a fault answering OpenSecureChannel")
        if not isinstance(exc, UaStatusCodeError):
            return None
        code = exc.code
        name = ua.StatusCode(code).name
        if code in _IDENTITY_REFUSED:
            return f"{where} refused the user identity ({name}): {self._identity_hint()}"
        if code in _CERTIFICATE_REFUSED and self.config.policy != "None":
            return self._certificate_refused(where, name)
        return None

    def _certificate_refused(self, where: str, reason: str) -> str:
        return (
            f"{where} refused our application certificate ({reason}): copy "
            f"{self.pki.cert_file} (application URI {self.pki.application_uri}) into the "
            "server's trusted client certificates (or accept it in the server's rejected "
            "list), then wait for the next retry"
        )

    def _identity_hint(self) -> str:
        identity = self.config.identity
        if isinstance(identity, UsernameIdentity):
            return (
                f"check the password of user {identity.username!r} for source "
                f"{self.source_id} (EDGE_OPCUA_PASSWORDS / EDGE_OPCUA_PASSWORD_FILES) and "
                "that the server knows that user"
            )
        if isinstance(identity, CertificateIdentity):
            return (
                "the server does not accept the user certificate "
                f"{self.user_cert_file or identity.cert_file}: add "
                "it to the server's trusted user certificates"
            )
        return "the server does not allow anonymous sessions: set an identity in 'security'"


def build_client_security(
    config: OpcUaSourceConfig,
    endpoint_url: str,
    pki: ApplicationPki,
    password: SecretStr | None,
    base_dir: Path,
) -> ClientSecurity:
    """At start-up: check what the source's security needs is there (a config error fails
    the start), and warn about an unsecured source."""
    security = config.security
    identity = security.identity
    where = f"OPC UA source {config.id}"
    if security.policy == "None":
        log.warning(
            "%s (%s): security policy None: the link is neither signed nor encrypted and the "
            "server is not authenticated; use Basic256Sha256 with SignAndEncrypt in production",
            where,
            endpoint_url,
        )
    if isinstance(identity, UsernameIdentity) and password is None:
        raise ValueError(
            f"{where}: identity username {identity.username!r} needs a password: set "
            f'EDGE_OPCUA_PASSWORDS=\'{{"{config.id}": "..."}}\' or EDGE_OPCUA_PASSWORD_FILES'
        )
    if password is not None and not isinstance(identity, UsernameIdentity):
        raise ValueError(
            f"{where}: a password is configured but the register's identity is "
            f"{identity.type}; give identity {{type: username, username: ...}} or drop it"
        )
    if isinstance(identity, CertificateIdentity):
        cert_file = base_dir / identity.cert_file
        key_file = base_dir / identity.key_file
        for path in (cert_file, key_file):
            if not path.is_file():
                raise ValueError(f"{where}: identity certificate file {path} does not exist")
        return ClientSecurity(config.id, security, pki, None, cert_file, key_file)
    return ClientSecurity(config.id, security, pki, password)


def _open_secure_channel_fault(exc: BaseException) -> bool:
    """The server answered OpenSecureChannel with a ServiceFault — node-opcua's answer
    (BadSecurityChecksFailed) when it does not trust our certificate. asyncua 2.1 cannot
    decode that answer and fails in its own ``open_secure_channel`` (an assert; an
    AttributeError under ``python -O``), so the fault's code is lost."""
    if not isinstance(exc, AssertionError | AttributeError):
        return False
    frames = traceback.extract_tb(exc.__traceback__)
    return (
        bool(frames)
        and frames[-1].name == "open_secure_channel"
        and Path(frames[-1].filename).match("asyncua/client/ua_client.py")
    )


def _first_certificate(der: bytes) -> bytes:
    """Servers may send their certificate followed by its chain: keep the first one, whose
    length its outer DER SEQUENCE header gives (short or long form)."""
    if len(der) < 2 or der[0] != 0x30:
        return der  # not DER: let the certificate check say so
    first = der[1]
    if first < 0x80:
        return der[: 2 + first]
    octets = first & 0x7F
    if octets == 0 or len(der) < 2 + octets:
        return der
    return der[: 2 + octets + int.from_bytes(der[2 : 2 + octets], "big")]
