"""Redaction of secrets in command lines, for trace headers and analyzer reports.

A value is replaced by ``***`` when it follows an option whose name looks like a
secret (``--password=x``, ``--db-password x``, ``--api_key=x``, ``PASSWORD=x``), and
the password of a URL is replaced in any argument (``postgres://user:***@host``).
Names are matched by words: ``--key-file`` is redacted, ``--monkey`` is not.
"""

from __future__ import annotations

import re

MASK = "***"

# Words that make an option name secret wherever they appear in it ("dbpassword",
# "authtoken"), and shorter words that must stand alone between separators ("key").
_SECRET_NAME = re.compile(
    r"(?i)(passw(or)?d|secret|token|api[-_.]?key|private[-_.]?key|access[-_.]?key|credential"
    r"|(^|[-_.])(key|pass|pwd|auth|cookie|session)([-_.]|$))")
# An option, or an environment-style assignment: "--name", "-name", "NAME".
_OPTION = re.compile(r"^(-{1,2}[A-Za-z][\w.-]*|[A-Za-z_][\w.-]*)$")
_URL_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*):[^@/\s]*@")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+\S+")


def is_secret_name(name: str) -> bool:
    """True when an option or variable called ``name`` probably holds a secret."""
    return bool(_SECRET_NAME.search(name.lstrip("-")))


def redact_text(text: str) -> str:
    """``text`` with URL passwords and HTTP credentials masked."""
    if "@" in text:
        text = _URL_PASSWORD.sub(rf"\1:{MASK}@", text)
    if " " in text:
        text = _BEARER.sub(rf"\1 {MASK}", text)
    return text


def redact_argv(argv: list) -> list[str]:
    """A copy of ``argv`` with the values of secret-looking options masked."""
    out: list[str] = []
    mask_next = False
    for arg in argv:
        arg = str(arg)
        if mask_next and not arg.startswith("--"):  # (a flag without value: not masked)
            out.append(MASK)
            mask_next = False
            continue
        mask_next = False
        name, sep, _value = arg.partition("=")
        if sep and _OPTION.match(name) and is_secret_name(name):
            out.append(f"{name}={MASK}")
            continue
        if arg.startswith("-") and not sep and _OPTION.match(arg) and is_secret_name(arg):
            mask_next = True  # "--password VALUE"
        out.append(redact_text(arg))
    return out
