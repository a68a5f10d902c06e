"""Test-only code: the independent truth, Kafka and job runners, Compose, a local Spark
cluster. Product packages never import from here."""
