"""What every app's REST API under /api/v1/ shares (CONTRACT §2): the `{code, detail}` error JSON
and the DRF exception handler (`errors`), strict JSON fields (`fields`), body parsers, the base
view with its body cap (`views`), cursor pagination, and the URL root (`urls`) that mounts each
app's own `api_urls`. No app's rules live here; apps import this package, never each other's API."""
