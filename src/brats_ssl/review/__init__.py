"""``brats-ssl review``: a local web app (and a static copy) to look at a run's pseudo-labels and
uncertainty in a NiiVue viewer and accept or reject them; the decisions go to ``RUN/review.json``
and the next training stage honours them (:mod:`brats_ssl.ssl.review_decisions`)."""

from urllib.parse import quote

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def case_url(case_id: str, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> str:
    """Where ``brats-ssl review RUN`` (default host and port) shows a case: the report links here."""
    return f"http://{host}:{port}/case/{quote(case_id, safe='')}"
