"""The local broker with SASL and TLS listeners, for the security tests.

Only tests need these listeners, their users and their keystore: the product's
:class:`services.kafka.LocalKafka` runs PLAINTEXT, and this subclass adds the rest through
its hooks. The PLAINTEXT listener stays, for brokers' own traffic and for reading the truth
back independently of the client security under test.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from services.kafka import LocalKafka, LocalKafkaError

SCRAM_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass
class SecureKafka(LocalKafka):
    """:class:`LocalKafka` with optional SASL_PLAINTEXT, SSL and SASL_SSL listeners.

    ``sasl_port`` adds a SASL_PLAINTEXT listener with SCRAM-SHA-256/512 for
    ``scram_users`` (name -> password), created when the storage is formatted, and with
    PLAIN for ``plain_users`` (name -> password, kept in the listener's JAAS settings as
    Kafka's built-in PLAIN server expects).

    ``sasl_ssl_port`` adds a SASL_SSL listener: the same users and mechanisms, over TLS
    with the SSL listener's identity (PLAIN, which sends the password as it is, belongs here).

    No password ever appears on a command line (``/proc/<pid>/cmdline`` is readable by every
    user): the SCRAM credentials reach ``kafka-storage format`` through a Java argument file
    readable by this user only, and the files holding passwords or keys are created that way.

    ``ssl_port`` adds an SSL (TLS) listener whose identity is ``ssl_certfile`` (the
    server's certificate chain, PEM, leaf first) and ``ssl_keyfile`` (its unencrypted
    PKCS#8 key, PEM). Kafka reads both from one PEM keystore file (``ssl.keystore.type=PEM``),
    written into ``home`` at start, so tests can hand it certificates they made themselves,
    including untrusted or expired ones. Clients are not asked for certificates.
    """

    sasl_port: int | None = None
    scram_users: Mapping[str, str] = field(default_factory=dict)
    plain_users: Mapping[str, str] = field(default_factory=dict)
    ssl_port: int | None = None
    sasl_ssl_port: int | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None

    @property
    def sasl_bootstrap_servers(self) -> str:
        return f"{self.host}:{self.sasl_port}"

    @property
    def ssl_bootstrap_servers(self) -> str:
        return f"{self.host}:{self.ssl_port}"

    @property
    def sasl_ssl_bootstrap_servers(self) -> str:
        return f"{self.host}:{self.sasl_ssl_port}"

    @property
    def ssl_keystore_file(self) -> Path:
        """The PEM keystore (key, then certificate chain) that the SSL listener serves."""
        return self.home / "tls" / "keystore.pem"

    def _sasl_listeners(self) -> list[str]:
        return [
            name
            for name, port in (("SASL_PLAINTEXT", self.sasl_port), ("SASL_SSL", self.sasl_ssl_port))
            if port is not None
        ]

    def _tls_listeners(self) -> list[str]:
        return [
            name
            for name, port in (("SSL", self.ssl_port), ("SASL_SSL", self.sasl_ssl_port))
            if port is not None
        ]

    def client_listeners(self) -> dict[str, int]:
        listeners = super().client_listeners()
        for name, port in (
            ("SASL_PLAINTEXT", self.sasl_port),
            ("SASL_SSL", self.sasl_ssl_port),
            ("SSL", self.ssl_port),
        ):
            if port is not None:
                listeners[name] = port
        return listeners

    def listener_settings(self) -> dict[str, str]:
        """JAAS settings per SASL listener and mechanism; the PEM keystore per TLS listener."""
        props = super().listener_settings()
        for name in self._sasl_listeners():
            prefix = f"listener.name.{name.lower()}"
            for mechanism in SCRAM_MECHANISMS:
                props[f"{prefix}.{mechanism.lower()}.sasl.jaas.config"] = (
                    "org.apache.kafka.common.security.scram.ScramLoginModule required;"
                )
            if self.plain_users:
                # PLAIN's built-in server checks passwords against user_<name> options.
                users = "".join(
                    f' user_{jaas_name(user)}="{jaas_escape(password)}"'
                    for user, password in self.plain_users.items()
                )
                props[f"{prefix}.plain.sasl.jaas.config"] = (
                    f"org.apache.kafka.common.security.plain.PlainLoginModule required{users};"
                )
        if self._sasl_listeners():
            mechanisms = [*SCRAM_MECHANISMS, *(["PLAIN"] if self.plain_users else [])]
            props["sasl.enabled.mechanisms"] = ",".join(mechanisms)
        for name in self._tls_listeners():
            prefix = f"listener.name.{name.lower()}"
            props[f"{prefix}.ssl.keystore.type"] = "PEM"
            props[f"{prefix}.ssl.keystore.location"] = str(self.ssl_keystore_file)
            props[f"{prefix}.ssl.client.auth"] = "none"
        return props

    def prepare_home(self) -> None:
        """The TLS listeners' PEM keystore: ``ssl_keyfile`` then ``ssl_certfile``.

        Kafka's file-based PEM keystore wants the key and its chain in one file. It is
        written afresh at every start so that a restart picks up new certificates, and is
        created readable by this user only because it holds the private key.
        """
        super().prepare_home()
        if not self._tls_listeners():
            return
        if self.ssl_certfile is None or self.ssl_keyfile is None:
            raise LocalKafkaError(
                "ssl_port and sasl_ssl_port need ssl_certfile (the server's certificate chain, "
                "PEM) and ssl_keyfile (its unencrypted PKCS#8 key, PEM)"
            )
        try:
            key = Path(self.ssl_keyfile).read_text()
            chain = Path(self.ssl_certfile).read_text()
        except OSError as exc:
            raise LocalKafkaError(f"cannot read the TLS key or certificate: {exc}") from None
        if "-----BEGIN PRIVATE KEY-----" not in key:
            raise LocalKafkaError(
                f"{self.ssl_keyfile} is not an unencrypted PKCS#8 key (-----BEGIN PRIVATE "
                "KEY-----), the only kind Kafka's PEM keystore reads without a password; "
                "convert it with `openssl pkcs8 -topk8 -nocrypt`"
            )
        self.ssl_keystore_file.parent.mkdir(parents=True, exist_ok=True)
        self.ssl_keystore_file.touch(mode=0o600, exist_ok=True)
        self.ssl_keystore_file.write_text(key.rstrip("\n") + "\n" + chain)

    def storage_format_options(self) -> list[str]:
        """The SCRAM users, created in the metadata log when the storage is formatted."""
        options = super().storage_format_options()
        for user, password in self.scram_users.items():
            for mechanism in SCRAM_MECHANISMS:
                options += ["--add-scram", f"{mechanism}=[name={user},password={password}]"]
        return options

    def run_tool(self, command: list[str]) -> subprocess.CompletedProcess[str]:
        """The tool's arguments through a Java argument file (``java @file``), not argv,
        so the SCRAM passwords among them stay off the command line."""
        argfile = self.home / "java-tool.args"
        argfile.touch(mode=0o600, exist_ok=True)
        argfile.write_text("\n".join(java_argfile_quote(a) for a in command[1:]) + "\n")
        try:
            return super().run_tool([command[0], f"@{argfile}"])
        finally:
            argfile.unlink(missing_ok=True)


def jaas_escape(text: str) -> str:
    """A value for a double-quoted JAAS option: a quote in a password would otherwise end
    the value early and make the broker refuse the whole listener configuration."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


def jaas_name(name: str) -> str:
    """A user name as part of a JAAS option name (``user_<name>``), which cannot be quoted."""
    if not name or not all(c.isalnum() or c in "._-" for c in name):
        raise LocalKafkaError(
            f"PLAIN user name {name!r}: use letters, digits, '.', '_' or '-' only"
        )
    return name


def java_argfile_quote(argument: str) -> str:
    """One argument of a Java argument file: quoted, with backslashes and quotes escaped."""
    return '"' + argument.replace("\\", "\\\\").replace('"', '\\"') + '"'
