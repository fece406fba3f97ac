"""The connection URL: the hub's socket with the token, the catalog and the serializer.

``GET {WEBSOCKET_URL}?token={TOKEN}&actions={catalog JSON}[&vsn=2.0.0]`` (protocol page,
section 1). Web servers cap the request line near 8 KB, and the catalog travels in it.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

# Over this many bytes the URL may be refused by the hub's web server.
URL_SIZE_WARNING: Final = 8000
# v1 is the hub's default serializer: no vsn parameter means it.
DEFAULT_VSN: Final = "1.0.0"


def connection_url(
    websocket_url: str, token: str, catalog_json: str, vsn: str = DEFAULT_VSN
) -> str:
    """`websocket_url` with the token, the catalog and (for v2) the serializer version in its
    query, after any query it has already. The result holds the token: never log it."""
    parts = urlsplit(websocket_url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query += [("token", token), ("actions", catalog_json)]
    if vsn != DEFAULT_VSN:
        query.append(("vsn", vsn))
    # The catalog's ':' and ',' stay readable; everything else is percent-encoded.
    encoded = urlencode(query, quote_via=lambda value, *_: quote(value, safe=":,"))
    return urlunsplit(parts._replace(query=encoded))
