"""Security end to end on a real broker: SASL/SCRAM, SASL/PLAIN and TLS.

Producer and job (``consumer/submit.sh``) run as users run them. With the right settings
the job's table must equal the truth computed from the records read back through the
broker's PLAINTEXT listener (independent of the client security under test). With a wrong
password, a CA the client does not know, or an expired broker certificate, both must stop
with exit status 3 and a one-line message naming the cause, in seconds rather than after
the connect timeout, with nothing added to or lost from the topic. Each scenario records
what it observed for docs/RELIABILITY.md.

Certificates are made here with the ``openssl`` command (the ``cryptography`` package is
not part of the project's environment).
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.support.conditions import wait_for
from tests.support.jobs import JobRun, RunningJob, run_job, start_producer
from tests.support.kafka import create_topic, free_port, read_topic
from tests.support.reliability import record_reliability
from tests.support.secure_kafka import SecureKafka
from tests.support.truth import expected_monthly

USER, PASSWORD = "pipeline", "correct horse battery staple"
# A quote and a backslash: both must survive the broker's JAAS settings and the job's.
PLAIN_USER, PLAIN_PASSWORD = "reporter", 'plain "text" \\ password'
EVENTS = 300  # per scenario: enough for three months, small for a 2-core machine
SEEDED = 200  # events already on the topic that refused runs must leave alone
# Refused runs must not wait for these: they prove the refusal is not a timeout.
PRODUCER_TIMEOUT, JOB_TIMEOUT = "60s", "120"

SCRAM_FLAGS = [
    "--security-protocol",
    "SASL_PLAINTEXT",
    "--sasl-mechanism",
    "SCRAM-SHA-512",
    "--sasl-username",
    USER,
]
PLAIN_FLAGS = [
    "--security-protocol",
    "SASL_PLAINTEXT",
    "--sasl-mechanism",
    "PLAIN",
    "--sasl-username",
    PLAIN_USER,
]


# -- certificates ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    """A test CA, the broker's identity it signed, and the certificates the faults need."""

    ca: Path  # the CA clients should trust
    other_ca: Path  # a CA that signed nothing the broker presents
    server_cert: Path  # for localhost and 127.0.0.1, valid now
    server_key: Path  # PKCS#8, unencrypted, as Kafka's PEM keystore reads it
    expired_cert: Path  # same key, same CA and names, validity ended yesterday


def openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(
        ["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    if result.returncode != 0:
        pytest.fail(f"openssl {' '.join(args)} failed:\n{result.stderr[-2000:]}")


def openssl_time(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y%m%d%H%M%SZ")


CA_CONFIG = """\
[ca]
default_ca = test_ca
[test_ca]
database = index.txt
new_certs_dir = issued
certificate = ca.pem
private_key = ca.key
default_md = sha256
policy = any_name
unique_subject = no
copy_extensions = none
rand_serial = yes
[any_name]
commonName = supplied
[server]
subjectAltName = DNS:localhost,IP:127.0.0.1
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
"""


def make_ca(folder: Path, name: str, common_name: str) -> Path:
    openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-keyout", f"{name}.key", "-out", f"{name}.pem", "-subj", f"/CN={common_name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=folder,
    )  # fmt: skip
    return folder / f"{name}.pem"


def make_pki(folder: Path) -> Pki:
    """CA, an unrelated CA, and a server key with a valid and an expired certificate.

    ``openssl ca`` signs with explicit start and end dates, which ``openssl x509 -req``
    (OpenSSL 3.0) cannot set in the past; the expired certificate differs from the valid
    one only in its dates, so a refusal can only be about expiry.
    """
    if shutil.which("openssl") is None:
        pytest.fail("the openssl command is needed to make the test certificates")
    ca = make_ca(folder, "ca", "Login pipeline test CA")
    other_ca = make_ca(folder, "other-ca", "Some other CA")
    (folder / "ca.cnf").write_text(CA_CONFIG)
    (folder / "index.txt").write_text("")
    (folder / "issued").mkdir()
    openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=localhost",
        cwd=folder,
    )  # fmt: skip
    now = datetime.now(timezone.utc)
    for name, start, end in (
        ("server.pem", now - timedelta(hours=1), now + timedelta(days=1)),
        ("expired.pem", now - timedelta(days=2), now - timedelta(days=1)),
    ):
        openssl(
            "ca", "-batch", "-config", "ca.cnf", "-extensions", "server", "-notext",
            "-in", "server.csr", "-out", name,
            "-startdate", openssl_time(start), "-enddate", openssl_time(end),
            cwd=folder,
        )  # fmt: skip
    return Pki(
        ca=ca,
        other_ca=other_ca,
        server_cert=folder / "server.pem",
        server_key=folder / "server.key",
        expired_cert=folder / "expired.pem",
    )


# -- brokers ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[SecureKafka]:
    """One broker with every listener under test: PLAINTEXT (for the truth), SASL_PLAINTEXT,
    SSL and SASL_SSL."""
    broker = SecureKafka(
        home=tmp_path_factory.mktemp("secure"),
        port=free_port(),
        controller_port=free_port(),
        sasl_port=free_port(),
        scram_users={USER: PASSWORD},
        plain_users={PLAIN_USER: PLAIN_PASSWORD},
        ssl_port=free_port(),
        sasl_ssl_port=free_port(),
        ssl_certfile=pki.server_cert,
        ssl_keyfile=pki.server_key,
    )
    broker.start()
    yield broker
    broker.stop()


@dataclass(frozen=True)
class Address:
    """What :func:`tests.helpers.run_job` needs of a broker: one listener's address."""

    bootstrap_servers: str


# -- running the pipeline --------------------------------------------------------------------


@dataclass
class ProducerRun:
    result: subprocess.CompletedProcess[str]
    seconds: float
    summary: dict | None  # --summary-json; None when the run ended before producing

    @property
    def acknowledged(self) -> int:
        return self.summary["acknowledged"] if self.summary else 0

    @property
    def error_line(self) -> str:
        return one_error_line(self.result.stderr)


_runs = itertools.count(1)


def produce(
    bootstrap_servers: str,
    topic: str,
    work: Path,
    *flags: str,
    password: str | None = None,
    count: int = EVENTS,
) -> ProducerRun:
    """``python -m producer`` backfilling ``count`` events over three months into ``topic``."""
    summary = work / f"producer-{next(_runs)}.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAFKA_SASL")}
    if password is not None:
        env["KAFKA_SASL_PASSWORD"] = password
    command = [
        sys.executable, "-m", "producer", "--bootstrap-servers", bootstrap_servers,
        "--topic", topic, "--start", "2024-01-01", "--end", "2024-03-31",
        "--count", str(count), "--progress", "none", "--connect-timeout", PRODUCER_TIMEOUT,
        "--summary-json", str(summary), *flags,
    ]  # fmt: skip
    started = time.monotonic()
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=180, check=False
    )
    seconds = time.monotonic() - started
    loaded = json.loads(summary.read_text()) if summary.exists() else None
    return ProducerRun(result, seconds, loaded)


def job(
    address: str, topic: str, work: Path, *flags: str, password: str | None = None
) -> tuple[JobRun, float]:
    """The job drained once through ``address``; its run and how long it took."""
    env = {"KAFKA_SASL_PASSWORD": password} if password is not None else None
    started = time.monotonic()
    run = run_job(
        Address(address),
        topic,
        work,
        "--connect-timeout",
        JOB_TIMEOUT,
        *flags,
        env=env,
        check=False,
    )
    return run, time.monotonic() - started


def one_error_line(output: str) -> str:
    """The single ``error:`` line a refused run prints (its stack traces would be a bug)."""
    lines = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, output[-3000:]
    return lines[0]


@dataclass
class Tally:
    """Acknowledged by Kafka, read back from the topic, counted by the job; and the gaps."""

    acknowledged: int
    on_topic: int
    counted: int
    lost: int
    double_counted: int
    exact: bool  # the job's table equals the truth month by month, outcomes included


def tally(acknowledged: int, records: list, counted: dict[str, tuple[int, int, int]]) -> Tally:
    """Lost and double-counted events, from observations only.

    Lost: acknowledged but missing from the topic, plus logins of the truth the job did
    not count, per month. Double-counted: records beyond what was acknowledged, plus
    logins the job counted beyond the truth, per month.
    """
    truth = expected_monthly(json.loads(r.value) for r in records)
    gaps = [counted.get(m, (0,))[0] - truth.get(m, (0,))[0] for m in truth.keys() | counted]
    return Tally(
        acknowledged=acknowledged,
        on_topic=len(records),
        counted=sum(row[0] for row in counted.values()),
        lost=max(acknowledged - len(records), 0) + sum(-g for g in gaps if g < 0),
        double_counted=max(len(records) - acknowledged, 0) + sum(g for g in gaps if g > 0),
        exact=counted == truth,
    )


def record_exact_run(name: str, result: Tally, **row: object) -> None:
    """One reliability row from an observed run, which must have counted exactly."""
    row = {"times": 1, **row}
    record_reliability(name, lost=result.lost, double_counted=result.double_counted, **row)
    assert result.exact and result.lost == 0 and result.double_counted == 0, result


def read_back(broker: SecureKafka, topic: str, expected: int) -> list:
    """Every record on ``topic`` via PLAINTEXT; asks for one more so extras would show."""
    return read_topic(broker.bootstrap_servers, topic, expected + 1, timeout_s=5)


def no_table(run: JobRun) -> bool:
    return not (run.output_dir / "monthly_logins.csv").exists()


def assert_refused(
    producer: ProducerRun, job_run: JobRun, job_seconds: float, *phrases: str
) -> None:
    """Exit 3, one clear line naming the cause, no table, and no waiting for a timeout."""
    assert producer.result.returncode == 3, producer.result.stderr[-3000:]
    assert producer.summary is None and "Sent " not in producer.result.stdout
    assert producer.seconds < 20, producer.seconds  # not the 60 s connect timeout
    assert job_run.result.returncode == 3, job_run.output[-3000:]
    assert job_seconds < float(JOB_TIMEOUT), job_seconds
    assert no_table(job_run)
    for line in (producer.error_line, one_error_line(job_run.output)):
        for phrase in phrases:
            assert phrase in line, line
        assert "did not answer" not in line and "credentials" not in line, line


# -- SASL ------------------------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.slow
def test_scram_right_password_counts_exactly_and_a_wrong_one_is_refused(
    secure_broker: SecureKafka, tmp_path: Path
) -> None:
    address, topic = secure_broker.sasl_bootstrap_servers, "scram"
    secret = tmp_path / "kafka-password"
    secret.write_text(PASSWORD + "\n")
    secret.chmod(0o600)

    right = produce(address, topic, tmp_path, *SCRAM_FLAGS, "--sasl-password-file", str(secret))
    assert right.result.returncode == 0, right.result.stderr[-3000:]
    assert f"{EVENTS} acknowledged, 0 failed" in right.result.stdout

    wrong = produce(address, topic, tmp_path, *SCRAM_FLAGS, password="wrong")
    assert wrong.result.returncode == 3
    assert f"refused to authenticate user '{USER}' with SCRAM-SHA-512" in wrong.error_line
    assert wrong.seconds < 20  # not the 60 s connect timeout

    refused, refused_s = job(address, topic, tmp_path / "wrong", *SCRAM_FLAGS, password="wrong")
    assert refused.result.returncode == 3, refused.output[-3000:]
    assert f"rejected the credentials of '{USER}' (SCRAM-SHA-512)" in one_error_line(refused.output)
    assert refused_s < float(JOB_TIMEOUT) and no_table(refused)

    counted, counted_s = job(address, topic, tmp_path / "right", *SCRAM_FLAGS, password=PASSWORD)
    assert counted.result.returncode == 0, counted.output[-3000:]
    records = read_back(secure_broker, topic, right.acknowledged)
    result = tally(right.acknowledged, records, counted.monthly)
    record_exact_run(
        "scram",
        result,
        fault="SASL/SCRAM-SHA-512: the right password, and a wrong one",
        injection="producer (password in a file) and job (KAFKA_SASL_PASSWORD) on the SCRAM "
        "listener; then both again with a wrong password",
        times=2,
        events=right.summary["sent"],
        note=f"right password: {right.summary['sent']:,} sent, {result.acknowledged:,} "
        f"acknowledged, {result.on_topic:,} on the topic, {result.counted:,} counted (job "
        f"{counted_s:.0f} s); wrong "
        f"password: producer refused in {wrong.seconds:.1f} s, job in {refused_s:.0f} s (exit "
        f"{wrong.result.returncode} and {refused.result.returncode}, "
        f"{'no table' if no_table(refused) else 'a table'} written)",
    )
    output = right.result.stdout + right.result.stderr + counted.output + refused.output
    assert PASSWORD not in output


@pytest.mark.integration
@pytest.mark.slow
def test_plain_right_password_counts_exactly(secure_broker: SecureKafka, tmp_path: Path) -> None:
    address, topic = secure_broker.sasl_bootstrap_servers, "plain"
    right = produce(address, topic, tmp_path, *PLAIN_FLAGS, password=PLAIN_PASSWORD)
    assert right.result.returncode == 0, right.result.stderr[-3000:]

    wrong = produce(address, topic, tmp_path, *PLAIN_FLAGS, password="wrong")
    assert wrong.result.returncode == 3
    assert f"refused to authenticate user '{PLAIN_USER}' with PLAIN" in wrong.error_line

    counted, counted_s = job(address, topic, tmp_path, *PLAIN_FLAGS, password=PLAIN_PASSWORD)
    assert counted.result.returncode == 0, counted.output[-3000:]
    records = read_back(secure_broker, topic, right.acknowledged)
    result = tally(right.acknowledged, records, counted.monthly)
    record_exact_run(
        "sasl_plain",
        result,
        fault="SASL/PLAIN (a password with a quote and a backslash)",
        injection="producer and job with --sasl-mechanism PLAIN and KAFKA_SASL_PASSWORD on the "
        "SASL_PLAINTEXT listener; the producer once more with a wrong password",
        events=right.summary["sent"],
        note=f"{right.summary['sent']:,} sent, {result.acknowledged:,} acknowledged, "
        f"{result.on_topic:,} on the topic, {result.counted:,} counted (job {counted_s:.0f} s); "
        f"wrong password refused in {wrong.seconds:.1f} s (exit {wrong.result.returncode})",
    )
    assert PLAIN_PASSWORD not in right.result.stdout + right.result.stderr + counted.output


# -- SASL_SSL, and what a run exposes ----------------------------------------------------------


def secrets_in_spark_ui(port: int, secrets: tuple[str, ...]) -> list[str]:
    """Which ``secrets`` the Spark UI on ``port`` shows through its REST API, on the
    environment page and in the streaming query's SQL plans."""
    import urllib.request

    def get(path: str) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/{path}", timeout=60) as r:
            return r.read().decode()

    (app,) = json.loads(get("applications"))
    pages = get(f"applications/{app['id']}/environment") + get(f"applications/{app['id']}/sql")
    assert "spark.app.name" in pages  # the environment page, really
    return [secret for secret in secrets if secret in pages]


@pytest.mark.integration
@pytest.mark.slow
def test_sasl_ssl_counts_exactly_and_no_password_leaves_the_process(
    secure_broker: SecureKafka, pki: Pki, tmp_path: Path
) -> None:
    """PLAIN over TLS, as the docs recommend for PLAIN. While producer and job run: no
    command line of the producer, the job (submit.sh, the driver JVM, the Python driver) or
    the broker holds a password, the Spark UI's environment page and SQL plans show none,
    and every socket the job listens on is on 127.0.0.1."""
    from tests.support.faults import (
        command_line,
        listening_sockets,
        process_group,
        spark_ui_port,
    )

    address, topic = secure_broker.sasl_ssl_bootstrap_servers, "sasl-ssl"
    flags = [*PLAIN_FLAGS, "--ssl-cafile", str(pki.ca)]
    flags[flags.index("SASL_PLAINTEXT")] = "SASL_SSL"
    secret = tmp_path / "kafka-password"
    secret.write_text(PLAIN_PASSWORD + "\n")
    secret.chmod(0o600)
    summary = tmp_path / "producer.json"
    # The live job starts before the producer, so the topic must exist (made via PLAINTEXT).
    create_topic(secure_broker.bootstrap_servers, topic)
    asked = free_port()  # for Spark's UI
    job = RunningJob(
        Address(address), topic, tmp_path, "--trigger", "1s", *flags,
        env={"KAFKA_SASL_PASSWORD": PLAIN_PASSWORD,
             "SPARK_SUBMIT_EXTRA": f"--conf spark.ui.port={asked}"},
    )  # fmt: skip
    producer = None
    try:
        wait_for(lambda: "Counting new records" in job.stdout or not job.alive(), 240, "the job")
        producer = start_producer(
            address, topic, *flags, "--sasl-password-file", str(secret), "--count", str(EVENTS),
            "--rate", "40", "--summary-json", str(summary),
        )  # fmt: skip
        assert producer.poll() is None, "the producer ended before its command line was read"
        processes = {**process_group(job.process.pid), producer.pid: command_line(producer.pid)}
        broker_pid = secure_broker.pid()
        assert broker_pid is not None
        processes[broker_pid] = command_line(broker_pid)
        sockets = listening_sockets(set(process_group(job.process.pid)))
        ui = spark_ui_port(sockets, asked)
        ui_leaks = secrets_in_spark_ui(ui, (PLAIN_PASSWORD, PASSWORD)) if ui else []
        _, stderr = producer.communicate(timeout=180)
        acknowledged = json.loads(summary.read_text())["acknowledged"]
        records = read_back(secure_broker, topic, acknowledged)
        truth = expected_monthly(json.loads(r.value) for r in records)
        wait_for(lambda: job.monthly() == truth or not job.alive(), 180, "the job's table")
        counted = job.monthly() or {}
    finally:
        if producer is not None and producer.poll() is None:
            producer.kill()
        job.stop()
    leaking = [pid for pid, line in processes.items() if PLAIN_PASSWORD in line or PASSWORD in line]
    result = tally(acknowledged, records, counted)
    kinds = {line.split()[0].rsplit("/", 1)[-1] for line in processes.values() if line.strip()}
    record_exact_run(
        "sasl_ssl",
        result,
        fault="SASL_SSL (PLAIN over TLS); no password on a command line, in the Spark UI or "
        "beyond loopback",
        injection="producer (password in a file) and a live job (KAFKA_SASL_PASSWORD) on the "
        "broker's SASL_SSL listener with --ssl-cafile; their /proc/<pid>/cmdline, the "
        "broker's, `ss -ltnp` and the Spark UI's REST API read while both ran",
        events=acknowledged,
        note=f"{acknowledged:,} acknowledged, {result.on_topic:,} on the topic, "
        f"{result.counted:,} counted; {len(processes)} command lines ({', '.join(sorted(kinds))}"
        f") with {len(leaking)} password; {len(sockets)} listening sockets of the job, "
        f"{sum(a != '127.0.0.1' for a, _, _ in sockets)} beyond 127.0.0.1; Spark UI "
        f"{'found' if ui else 'NOT found'}, {len(ui_leaks)} password in its environment and "
        "SQL pages",
    )
    assert producer.returncode == 0, stderr[-3000:]
    assert leaking == [], {pid: processes[pid] for pid in leaking}
    assert len(processes) >= 5  # submit.sh, the driver JVM, the Python driver, producer, broker
    assert ui and ui_leaks == []
    assert sockets and all(address == "127.0.0.1" for address, _, _ in sockets), sockets
    output = job.stdout + job.stderr_path.read_text()
    assert PLAIN_PASSWORD not in output
    assert oct(secure_broker.properties_file.stat().st_mode & 0o777) == "0o600"


# -- TLS -------------------------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.slow
def test_tls_with_the_right_ca_counts_exactly(
    secure_broker: SecureKafka, pki: Pki, tmp_path: Path
) -> None:
    address, topic = secure_broker.ssl_bootstrap_servers, "tls"
    flags = ["--security-protocol", "SSL", "--ssl-cafile", str(pki.ca)]
    sent = produce(address, topic, tmp_path, *flags)
    assert sent.result.returncode == 0, sent.result.stderr[-3000:]
    counted, counted_s = job(address, topic, tmp_path, *flags)
    assert counted.result.returncode == 0, counted.output[-3000:]
    records = read_back(secure_broker, topic, sent.acknowledged)
    result = tally(sent.acknowledged, records, counted.monthly)
    record_exact_run(
        "tls",
        result,
        fault="TLS (SSL listener, certificate for localhost and 127.0.0.1 from a test CA)",
        injection="producer and job with --security-protocol SSL --ssl-cafile ca.pem against "
        "the broker's SSL listener (PEM keystore)",
        events=sent.summary["sent"],
        note=f"{sent.summary['sent']:,} sent, {result.acknowledged:,} acknowledged, "
        f"{result.on_topic:,} on the topic, {result.counted:,} counted (producer "
        f"{sent.seconds:.1f} s, job {counted_s:.0f} s)",
    )


def seed_topic(broker: SecureKafka, topic: str, work: Path) -> int:
    """Events acknowledged through PLAINTEXT, for the refused runs to leave untouched."""
    seeded = produce(broker.bootstrap_servers, topic, work, count=SEEDED)
    assert seeded.result.returncode == 0, seeded.result.stderr[-3000:]
    return seeded.acknowledged


def refusal_row(
    name: str,
    fault: str,
    injection: str,
    seeded: int,
    records: list,
    producer: ProducerRun,
    job_run: JobRun,
    job_seconds: float,
) -> None:
    """The row of a refusal: the seeded events must all still be there, and nothing more."""
    record_reliability(
        name,
        fault=fault,
        injection=injection,
        times=2,
        events=seeded,
        lost=max(seeded - len(records), 0),
        double_counted=max(len(records) - seeded, 0),
        note=f"producer refused in {producer.seconds:.1f} s, job in {job_seconds:.0f} s "
        f"(exit {producer.result.returncode} and {job_run.result.returncode}, "
        f"{producer.acknowledged} acknowledged, {'no' if no_table(job_run) else 'a'} table "
        f"written); {len(records):,} of {seeded:,} earlier events on the topic after",
    )


@pytest.mark.integration
@pytest.mark.slow
def test_a_certificate_from_an_unknown_ca_is_refused(
    secure_broker: SecureKafka, pki: Pki, tmp_path: Path
) -> None:
    topic = "untrusted"
    seeded = seed_topic(secure_broker, topic, tmp_path)
    address = secure_broker.ssl_bootstrap_servers
    flags = ["--security-protocol", "SSL", "--ssl-cafile", str(pki.other_ca)]
    producer = produce(address, topic, tmp_path, *flags)
    job_run, job_s = job(address, topic, tmp_path, *flags)
    records = read_back(secure_broker, topic, seeded)
    refusal_row(
        "tls_untrusted",
        fault="Broker certificate signed by a CA the client does not trust",
        injection="producer and job given another CA's certificate as --ssl-cafile",
        seeded=seeded,
        records=records,
        producer=producer,
        job_run=job_run,
        job_seconds=job_s,
    )
    assert_refused(
        producer, job_run, job_s, "TLS certificate that is not trusted", str(pki.other_ca)
    )
    assert "--ssl-cafile" in producer.error_line and "--ssl-cafile" in job_run.output
    assert len(records) == seeded


@pytest.mark.integration
@pytest.mark.slow
def test_an_expired_broker_certificate_is_refused(
    pki: Pki, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    broker = SecureKafka(
        home=tmp_path_factory.mktemp("expired"),
        port=free_port(),
        controller_port=free_port(),
        ssl_port=free_port(),
        ssl_certfile=pki.expired_cert,
        ssl_keyfile=pki.server_key,
    )
    broker.start()
    try:
        topic = "expired"
        seeded = seed_topic(broker, topic, tmp_path)
        flags = ["--security-protocol", "SSL", "--ssl-cafile", str(pki.ca)]
        producer = produce(broker.ssl_bootstrap_servers, topic, tmp_path, *flags)
        job_run, job_s = job(broker.ssl_bootstrap_servers, topic, tmp_path, *flags)
        records = read_back(broker, topic, seeded)
    finally:
        broker.stop()
    refusal_row(
        "tls_expired",
        fault="Expired broker certificate (from the trusted CA)",
        injection="a second broker whose SSL listener presents a certificate that expired "
        "yesterday; producer and job with the right --ssl-cafile",
        seeded=seeded,
        records=records,
        producer=producer,
        job_run=job_run,
        job_seconds=job_s,
    )
    assert_refused(producer, job_run, job_s, "TLS certificate that has expired", "renew")
    assert len(records) == seeded
