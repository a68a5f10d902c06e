"""What the producer, the Spark job, the charts and the tests agree on: each fact once.

Standard library only: ``consumer/submit.sh`` zips this package with the job's, so the job
imports it on any Spark cluster. ``events`` (the event's version and the reasons a record
is rejected), ``tables`` (the periods counted and the tables written), ``kafka`` (where the
topic is, and the security options both clients take).
"""
