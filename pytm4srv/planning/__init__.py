"""``GET /api/machines/holds/window``: what the board shows, in one request."""
