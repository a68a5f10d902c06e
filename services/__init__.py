"""Local stand-ins for the Docker services: Kafka and a standalone Spark cluster as processes.

They let the whole pipeline, and its tests, run on a machine without Docker, on the same
Kafka and Spark versions as the images (see ``.env``).
"""
