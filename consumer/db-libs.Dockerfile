# SQLAlchemy and pg8000 for the job's driver in the Bitnami Spark image, which has Python but
# neither package nor libpq: the `db` extra of pyproject.toml (its exact pins), as pure-Python
# wheels only, so the folder works with any Python 3 the Spark image has. The
# spark-db-libs service of docker-compose.dashboard.yml copies it into a volume that
# spark-master mounts at /opt/pipeline/db-libs (consumer/submit.sh: CONSUMER_PYTHONPATH).
ARG PYTHON_IMAGE=docker.io/library/python:3.12.12-slim-bookworm
FROM ${PYTHON_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /build
COPY pyproject.toml ./
# The stamp (the installed distributions) tells the copy step whether the volume is current.
RUN python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["db"]))' > requirements.txt \
    && pip install --no-cache-dir --no-compile --target /opt/db-libs \
         --only-binary=:all: --platform any --implementation py -r requirements.txt \
    && find /opt/db-libs -maxdepth 1 -name '*.dist-info' -printf '%f\n' | sort > /opt/db-libs.installed \
    && rm -rf /opt/db-libs/bin

# Copy into the volume mounted at /target unless it holds the same distributions already;
# the stamp goes last, so an interrupted copy is redone.
CMD ["sh", "-c", "cmp -s /opt/db-libs.installed /target/.installed || { find /target -mindepth 1 -delete && cp -R /opt/db-libs/. /target/ && cp /opt/db-libs.installed /target/.installed && echo \"Copied $(wc -l < /opt/db-libs.installed) packages to the spark_db_libs volume.\"; }"]
