"""The HTTP API: the FastAPI app, its routes, middleware and the micro-batcher."""
