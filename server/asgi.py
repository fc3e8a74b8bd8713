"""The app for ``uvicorn server.asgi:app`` (one or several workers); needs ``RUJUK_DATABASE_URL``,
which ``rujuk serve`` sets after starting the embedded PostgreSQL when none is configured."""

from server.app import create_app
from server.settings import get_settings

app = create_app(get_settings())
