# Refundry: one image for every Procfile role. The entrypoint is the `refundry` command, so
# the role is the container's command:
#   docker run IMAGE web --host 0.0.0.0    (the default)
#   docker run IMAGE worker -p 4 -t 8
#   docker run IMAGE scheduler
# Configure it with environment variables (README, "Deploying"): DATABASE_URL, BROKER_URL…
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Never root: PostgreSQL's and RabbitMQ's clients need nothing of it, and the embedded Redis
# (used only without BROKER_URL/REDIS_URL) writes under REFUNDRY_HOME.
RUN groupadd --gid 10001 refundry \
    && useradd --create-home --uid 10001 --gid 10001 --shell /usr/sbin/nologin refundry

WORKDIR /opt/refundry
COPY pyproject.toml README.md ./
COPY ledger ./ledger
COPY providers ./providers
COPY handlers ./handlers
COPY workers ./workers
RUN pip install --no-cache-dir . \
    && refundry --help > /dev/null

USER 10001:10001
WORKDIR /home/refundry
ENV REFUNDRY_HOME=/home/refundry/.refundry \
    PORT=8000
EXPOSE 8000

# exec form: `refundry` is PID 1 and receives SIGTERM itself (the worker forwards it to its
# processes, uvicorn finishes the requests in flight).
ENTRYPOINT ["refundry"]
CMD ["web", "--host", "0.0.0.0"]
