"""Charts from the Spark job's CSV output (``make report``)."""
