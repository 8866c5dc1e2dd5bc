"""Outside text on the page. A file name, data-set name, class name or model name, or anything else a file or a
client supplies, goes through ``as_markdown`` into Markdown and ``as_html`` into HTML (messages, info lines); the
player sets its caption with ``textContent``. Both first clean the text (``pixelar.inputs.clean_text``)."""
from __future__ import annotations

import html
import re
import string

from pixelar.inputs import clean_text


def as_html(value) -> str:
    """``value`` as HTML text (a message, an info line; not an attribute) that shows it as text: invalid Unicode,
    control and direction characters replaced, and ``&``, ``<`` and ``>`` escaped."""
    return html.escape(clean_text(str(value)), quote=False)


def as_markdown(value) -> str:
    """``value`` as Markdown that shows it as text: cleaned, and every ASCII punctuation mark written as a character
    reference, so that no tag, link, image, emphasis or bare-URL link can form from it."""
    return "".join(f"&#{ord(c)};" if c in string.punctuation else c for c in clean_text(str(value)))


def file_name_part(value) -> str:
    """``value`` as part of a download's file name: ASCII letters, digits, ``.``, ``-`` and ``_`` only."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", str(value))
