"""Where the pipeline's topic is, and the Kafka security options both clients take.

The defaults equal ``.env`` (a test keeps them so; ``.env`` is not read here because the
job must run on a cluster without the project). The security options are one set of flags
and environment variables for the producer and the job: the password never comes from a
flag, only from ``KAFKA_SASL_PASSWORD`` or a file, so it stays out of process listings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contract.flags import Flag, one_of

DEFAULT_BOOTSTRAP_SERVERS = "localhost:9092"
DEFAULT_TOPIC = "logins"

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
PASSWORD_ENV = "KAFKA_SASL_PASSWORD"


# The same flags and variables for the producer and the job.
SECURITY_FLAGS = (
    Flag("--security-protocol", "KAFKA_SECURITY_PROTOCOL",
         "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL (default: PLAINTEXT)", "PLAINTEXT",
         one_of(*SECURITY_PROTOCOLS), "PROTOCOL"),
    Flag("--sasl-mechanism", "KAFKA_SASL_MECHANISM", "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512",
         None, one_of(*SASL_MECHANISMS), "MECHANISM"),
    Flag("--sasl-username", "KAFKA_SASL_USERNAME", "SASL user name", metavar="USER"),
    Flag("--sasl-password-file", "KAFKA_SASL_PASSWORD_FILE",
         f"file holding the SASL password (or set {PASSWORD_ENV}); never a flag, so it "
         "stays out of process listings", metavar="FILE"),
    Flag("--ssl-cafile", "KAFKA_SSL_CAFILE", "CA certificate (PEM) for TLS", metavar="FILE"),
)  # fmt: skip


class SecurityError(ValueError):
    """The security settings do not fit together; the message says what is missing."""


@dataclass(frozen=True)
class KafkaSecurity:
    """How a client authenticates to Kafka. The password never appears in ``repr``."""

    protocol: str = "PLAINTEXT"
    mechanism: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ssl_cafile: str | None = None

    @classmethod
    def from_settings(
        cls,
        protocol: str,
        mechanism: str | None,
        username: str | None,
        password_file: str | None,
        ssl_cafile: str | None,
        env: Mapping[str, str],
    ) -> KafkaSecurity:
        """The settings of either client, checked; :class:`SecurityError` if they clash."""
        password = env.get(PASSWORD_ENV) or None
        if password_file:
            try:
                password = Path(password_file).read_text().strip()
            except OSError as exc:
                raise SecurityError(
                    f"cannot read the SASL password file {password_file}: {exc}"
                ) from None
        if protocol.startswith("SASL"):
            if not (mechanism and username):
                raise SecurityError(f"{protocol} needs --sasl-mechanism and --sasl-username")
            if not password:
                raise SecurityError(
                    f"SASL needs a password: set {PASSWORD_ENV} or --sasl-password-file"
                )
        return cls(protocol, mechanism, username, password, ssl_cafile)

    def java_properties(self) -> dict[str, str]:
        """Properties of Kafka's Java client (the job adds Spark's ``kafka.`` prefix)."""
        props = {"security.protocol": self.protocol}
        if self.protocol.startswith("SASL"):
            module = (
                "org.apache.kafka.common.security.plain.PlainLoginModule"
                if self.mechanism == "PLAIN"
                else "org.apache.kafka.common.security.scram.ScramLoginModule"
            )
            props["sasl.mechanism"] = self.mechanism or "SCRAM-SHA-512"
            props["sasl.jaas.config"] = (
                f'{module} required username="{_jaas_escape(self.username or "")}" '
                f'password="{_jaas_escape(self.password or "")}";'
            )
        if self.ssl_cafile:
            props["ssl.truststore.type"] = "PEM"
            props["ssl.truststore.location"] = self.ssl_cafile
        return props

    def kafka_python_options(self) -> dict[str, Any]:
        """Keyword arguments of kafka-python's clients."""
        options: dict[str, Any] = {"security_protocol": self.protocol}
        if self.protocol.startswith("SASL"):
            options.update(
                sasl_mechanism=self.mechanism,
                sasl_plain_username=self.username,
                sasl_plain_password=self.password,
            )
        if self.ssl_cafile:
            options["ssl_cafile"] = self.ssl_cafile
        return options


def security_from_args(args: Any, env: Mapping[str, str]) -> KafkaSecurity:
    """:meth:`KafkaSecurity.from_settings` from an argparse result of :data:`SECURITY_FLAGS`."""
    return KafkaSecurity.from_settings(
        args.security_protocol,
        args.sasl_mechanism,
        args.sasl_username,
        args.sasl_password_file,
        args.ssl_cafile,
        env,
    )


def _jaas_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
