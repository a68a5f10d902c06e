"""Count logins per calendar month (or ISO week, or day) of event time, from Kafka, with
Spark Structured Streaming. The file spark-submit runs; the job is the ``consumer`` package.

Run it with ``consumer/submit.sh`` (which adds the Kafka connector matching your Spark and
ships ``consumer/`` and ``contract/`` to the cluster as a zip with ``--py-files``):

    consumer/submit.sh --trigger available-now --output-dir output/logins

It reads the login events (JSON, see ``producer/login_event.schema.json``) from a topic,
rejects records that are not valid events, and keeps a running table of logins per period
(``--period``, in ``--timezone``) in complete output mode: after every batch it prints the
whole table and, with ``--output-dir``, rewrites it as CSV. Rejected records are never
counted and never dropped silently: they are quarantined with their reason, partition and
offset, and counted per reason. Read ``consumer/job.py`` next.
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    from consumer.job import main
except ModuleNotFoundError:  # run as a file, without the zip: the project is the parent folder
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from consumer.job import main

if __name__ == "__main__":
    sys.exit(main())
