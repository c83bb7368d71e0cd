"""ASGI entry point, for servers that prefer it (the project itself serves WSGI with waitress)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "faceaccess.settings")

application = get_asgi_application()
