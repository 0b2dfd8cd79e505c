"""Small apps that the end-to-end tests run on real servers (gunicorn, uvicorn, uWSGI)."""
