"""`lumina serve`: the images API and the duplicate/burst review page (FastAPI)."""
