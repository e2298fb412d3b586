"""Redaction of secrets in command lines, for trace headers and analyzer reports.

A value is replaced by ``***`` when it follows an option whose name looks like a
secret (``--password=x``, ``--db-password x``, ``--api_key=x``, ``PASSWORD=x``), and
the password of a URL is replaced in any argument (``postgres://user:***@host``).
Names are matched by words: ``--key-file`` is redacted, ``--monkey`` is not.
"""

from __future__ import annotations

MASK = "***"

# Every pattern below needs one of these (casefolded) in the text: a command line
# without any of them is kept as is without importing re (milliseconds at the header).
_HINTS = ("pass", "pwd", "secret", "token", "key", "credential", "auth", "cookie",
          "session", "@", "bearer", "basic")

_patterns: tuple | None = None


def _compiled() -> tuple:
    """(secret name, option, URL password, bearer) patterns, compiled at first use."""
    global _patterns
    if _patterns is None:
        import re

        _patterns = (
            # Words that make an option name secret wherever they appear in it
            # ("dbpassword", "authtoken"), and shorter words that must stand alone
            # between separators ("key").
            re.compile(
                r"(?i)(passw(or)?d|secret|token|api[-_.]?key|private[-_.]?key|access[-_.]?key"
                r"|credential|(^|[-_.])(key|pass|pwd|auth|cookie|session)([-_.]|$))"),
            # An option, or an environment-style assignment: "--name", "-name", "NAME".
            re.compile(r"^(-{1,2}[A-Za-z][\w.-]*|[A-Za-z_][\w.-]*)$"),
            re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*):[^@/\s]*@"),
            re.compile(r"(?i)\b(bearer|basic)\s+\S+"),
        )
    return _patterns


def is_secret_name(name: str) -> bool:
    """True when an option or variable called ``name`` probably holds a secret."""
    return bool(_compiled()[0].search(name.lstrip("-")))


def redact_text(text: str) -> str:
    """``text`` with URL passwords and HTTP credentials masked."""
    if "@" in text:
        text = _compiled()[2].sub(rf"\1:{MASK}@", text)
    if " " in text:
        text = _compiled()[3].sub(rf"\1 {MASK}", text)
    return text


def redact_argv(argv: list) -> list[str]:
    """A copy of ``argv`` with the values of secret-looking options masked."""
    argv = [str(arg) for arg in argv]
    if not any(hint in arg.casefold() for arg in argv for hint in _HINTS):
        return argv
    option = _compiled()[1]
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
        if sep and option.match(name) and is_secret_name(name):
            out.append(f"{name}={MASK}")
            continue
        if arg.startswith("-") and not sep and option.match(arg) and is_secret_name(arg):
            mask_next = True  # "--password VALUE"
        out.append(redact_text(arg))
    return out
