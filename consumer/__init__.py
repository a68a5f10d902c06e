"""The Spark side of the pipeline. ``count_logins.py`` is a self-contained spark-submit job;
this package marker only lets the tests import it."""
