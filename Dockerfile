# FaceAccess image: one image for the web service and the engine worker (see docker-compose.yml).
# torch==2.13.0 from PyPI is a CUDA build; the NVIDIA container runtime supplies the driver, so the
# same image runs on CPU-only hosts too (the worker then uses the CPU).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=faceaccess.settings \
    FACEACCESS_DATA_DIR=/data \
    MEDIA_ROOT=/data/media \
    STATIC_ROOT=/app/staticfiles \
    FACEACCESS_CACHE_DIR=/models

# libglib2.0-0: OpenCV (headless) needs it at import time.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libglib2.0-0 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --create-home --home-dir /home/faceaccess faceaccess

WORKDIR /app
# Dependencies first (cached layer): only pyproject.toml changes reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
      > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt
COPY . .
RUN pip install --no-deps -e . \
 && SECRET_KEY=build DATABASE_URL=postgresql://build@localhost/build REDIS_URL=redis://localhost \
    python manage.py collectstatic --noinput -v0 \
 && mkdir -p /data/media /models \
 && chown -R faceaccess:faceaccess /data /models

USER faceaccess
EXPOSE 8000
# The web service (waitress with read deadlines and connection limits: faceaccess/serve.py, docs/running.md);
# the worker overrides the command (docker-compose.yml).
CMD ["python", "-m", "faceaccess.serve", "--listen=0.0.0.0:8000", "--threads=16"]
