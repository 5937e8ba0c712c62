# The dealab image for classrooms: Python 3.11, JDK 17 (for Glue jobs on Spark), the package and its labs.
# Untested on a Docker engine (the project's CI has none); `docker-compose config` validates the compose file.
FROM python:3.11-slim-bookworm

RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless make procps \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /dealab
COPY pyproject.toml README.md Makefile ./
COPY dealab ./dealab
COPY grader ./grader
RUN pip install --no-cache-dir -e '.[dev]' \
 && pip install --no-cache-dir --no-deps sagemaker-pyspark==1.4.5
COPY labs ./labs
COPY solutions ./solutions
COPY bench ./bench

ENV DEALAB_ROOT=/dealab \
    DEALAB_HOME=/state \
    JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64
VOLUME ["/state"]
EXPOSE 4566 4567
CMD ["python", "-m", "dealab.stack.server", "--host", "0.0.0.0", "--port", "4566", "--insecure-port", "4567", "--state-dir", "/state"]
