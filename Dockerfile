# recarchive: one image for the worker, beat, Flower and the demo simulator (see docker-compose.yml).
# pinned: a rebuild gets the same Python and Debian release (bump it on purpose, for security fixes)
FROM python:3.11.14-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# the system ffmpeg brings ffprobe; without it recarchive falls back to the imageio-ffmpeg binary
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/recarchive
COPY pyproject.toml README.md LICENSE ./
COPY config ./config
COPY providers ./providers
COPY storage ./storage
COPY tasks ./tasks
COPY worker ./worker
RUN pip install . "flower>=2"

# never run the worker as root; /tmp/prometheus holds the prefork children's metric files
RUN useradd --create-home --uid 10001 recarchive \
    && mkdir -p /tmp/prometheus /var/tmp/recarchive \
    && chown recarchive /tmp/prometheus /var/tmp/recarchive
USER recarchive
WORKDIR /home/recarchive

ENV RECARCHIVE_CONFIG=/etc/recarchive/recarchive.toml
CMD ["celery", "-A", "worker", "worker", "--loglevel", "INFO"]
