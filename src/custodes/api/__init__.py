"""The HTTP edge: FastAPI routes over the wired application. Thin; no business logic."""
