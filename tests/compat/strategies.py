"""Hypothesis strategies shared by the pytracking2 compatibility tests."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from hypothesis.provisional import urls

FERNET_KEY = b"XdhWbQZnqCIPLBL0ViPIW2vBTsmUNxAS-7mOtTdu6ZM="
OTHER_FERNET_KEY = b"Z3lR4nX0pXc0y1zJZ3lR4nX0pXc0y1zJZ3lR4nX0pXc="

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)

json_values: st.SearchStrategy[Any] = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)

metadata = st.dictionaries(st.text(max_size=12), json_values, max_size=5)

# Real URLs, URLs with non-ASCII and reserved characters, and arbitrary text
# (pytracking2 embeds whatever it is given).
destinations = (
    urls() | st.builds(lambda u, t: u + t, urls(), st.text(max_size=20)) | st.text(min_size=1, max_size=60)
)

base_urls = st.sampled_from(
    [
        "https://a.b.com/tracking/",
        "https://a.b.com/tracking/open/",
        "https://a.b.com/tracking",  # no trailing slash: urljoin replaces "tracking"
        "http://localhost:8000/t/",
        "https://t.example.com/c/?x=1",
        "https://t.example.com/c/#frag",
        "https://t.example.com/a/../b/./c/",
        "https://t.example.com/a//b/",
        "https://t.example.com/p;params/",
        "https://t.example.com",
        "https://user@t.example.com:8443/c/",
        "HTTPS://T.EXAMPLE.COM/C/",
        "mailto:x@example.com",
        "custom-scheme://t/c/",
        "//t.example.com/c/",
        "/relative/path/",
        "relative",
        "",
    ]
)

# Every Configuration setting that changes what a link carries.
link_settings = st.fixed_dictionaries(
    {},
    optional={
        "webhook_url": st.sampled_from(["https://webhook.com/tracking/", "http://127.0.0.1/hook"]),
        "include_webhook_url": st.booleans(),
        "default_metadata": metadata,
        "include_default_metadata": st.booleans(),
    },
)
