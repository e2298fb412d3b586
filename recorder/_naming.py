"""Names for unnamed locks and resources, worked out from the line that created them.

``registry_lock = threading.Lock()`` names its lock ``registry_lock``;
``self.lock = threading.Lock()`` in a method of ``Account`` names it ``Account.lock``;
a lock that a library makes (``queue.Queue``'s ``self.mutex``) is named after the
library's expression (``queue.Queue.mutex``) and also remembers the first frame of
the program's own code that drove its creation (``user_site``).  The analyzer shows
these names without the sources.

The expression is worked out once per creation site (code object + instruction, so
two locks made on one line get their own names) from the line's source, parsed with
``ast``; later creations at the site cost a dict lookup.  Nothing here may raise into
the program: any failure gives no name.
"""

from __future__ import annotations

import _thread
import os

from . import _core

TYPE_CHECKING = False
if TYPE_CHECKING:  # (typing costs milliseconds at start-up)
    from collections.abc import Iterator
    from typing import Any

# Imported at the first creation site worked out, not at start-up (linecache, with
# tokenize and re, costs milliseconds), and ast only for a line that is not a plain
# assignment (see _simple_expression).
ast: Any = None
linecache: Any = None

MAX_EXPR = 120          # longer expressions are cut (they are labels, not code)
MAX_PLACES = 4096       # the per-place memo is cleared past this many entries
MAX_LIB_FILES = 4096
_MAX_SPAN = 16          # the longest statement (in lines) searched for a creation

_HAS_POSITIONS = hasattr(_core.ThreadState.__init__.__code__, "co_positions")
_HAS_QUALNAME = hasattr(_core.ThreadState.__init__.__code__, "co_qualname")

_RECORDER_DIR = _core.RECORDER_DIR
_STDLIB_DIR = os.path.dirname(os.path.abspath(os.__file__)) + os.sep
_PACKAGE_DIRS = (os.sep + "site-packages" + os.sep, os.sep + "dist-packages" + os.sep)

# (file, line, instruction position) -> the same: code compiled again at one place.
_by_place: dict[tuple, tuple] = {}
# file name -> True when it is library code (standard library or an installed package)
_lib_files: dict[str, bool] = {}
_busy = _thread._local()
_NOTHING = (None, None)


def describe(rec: dict, frame: Any) -> None:
    """Add ``expr`` (and, for an object a library created, ``lib`` and ``user_site``)
    to the definition ``rec`` of an object created at ``frame`` (outside the
    recorder), as _core.define() does."""
    try:
        expr, lib = name_at(frame)
        if expr is not None:
            rec["expr"] = expr
        if lib is not None:
            rec["lib"] = lib
            rec["user_site"] = user_site(frame.f_back) or None
    except Exception:
        pass


def name_at(frame: Any) -> tuple:
    """(expr or None, library or None) of what ``frame``'s current instruction
    creates, cached per code object and instruction."""
    try:
        code = frame.f_code
        at = _core.names_by_code.get(id(code))
        if at is None:
            _core.watch_code(code)
            at = _core.names_by_code[id(code)] = {}
        info = at.get(frame.f_lasti)
        if info is None:
            info = at[frame.f_lasti] = _work_out(frame, code)
        return info
    except Exception:
        return _NOTHING


def user_site(frame: Any) -> int:
    """The site id of the first frame of the program's own code from ``frame`` up
    (outside the recorder, the standard library and installed packages); 0 if none."""
    lib_codes = _core.lib_codes
    while frame is not None:
        code = frame.f_code
        lib = lib_codes.get(id(code))
        if lib is None:
            _core.watch_code(code)
            lib = lib_codes[id(code)] = is_library_file(code.co_filename)
        if not lib:
            return _core.site_of_frame(frame)
        frame = frame.f_back
    return 0


def is_library_file(filename: str) -> bool:
    """True for the standard library's and installed packages' files."""
    lib = _lib_files.get(filename)
    if lib is None:
        if len(_lib_files) >= MAX_LIB_FILES:
            _lib_files.clear()
        lib = _lib_files[filename] = (
            filename.startswith((_STDLIB_DIR, "<frozen "))
            or any(d in filename for d in _PACKAGE_DIRS)
            or filename.startswith(_RECORDER_DIR))
    return lib


def _work_out(frame: Any, code: Any) -> tuple:
    """(expr, library module) of the creation at ``frame``'s current instruction."""
    if getattr(_busy, "on", False):  # a lock made while parsing: no name for it
        return _NOTHING
    _busy.on = True
    try:
        filename = code.co_filename
        module = frame.f_globals.get("__name__") or ""
        lib = _library(module, filename) if is_library_file(filename) else None
        pos = _position(code, frame.f_lasti, frame.f_lineno)
        place = (filename, pos)
        expr = _by_place.get(place)
        if expr is None:
            if linecache is None:
                _import_linecache()
            expr = _simple_expression(frame, code, pos, lib is not None, module)
            if expr is None:
                if ast is None:
                    _import_parsers()
                expr = _expression(frame, code, pos, lib is not None, module)
            if len(_by_place) >= MAX_PLACES:
                _by_place.clear()
            _by_place[place] = expr
        return (expr or None, lib)
    except Exception:
        return _NOTHING
    finally:
        _busy.on = False


# Top-level packages that are only a namespace: the library is their sub-package.
_NAMESPACES = ("concurrent",)


def _library(module: str, filename: str) -> str:
    """The library a module belongs to, as imported: its top-level package
    (``logging``, ``asyncio``; ``concurrent.futures``)."""
    parts = module.split(".")
    if parts[0] in _NAMESPACES and len(parts) > 1:
        return ".".join(parts[:2])
    return parts[0] or os.path.splitext(os.path.basename(filename))[0]


def _public_module(module: str) -> str:
    """``concurrent.futures._base`` -> ``concurrent.futures``; ``logging`` -> ``logging``."""
    parts = []
    for part in module.split("."):
        if part.startswith("_"):
            break
        parts.append(part)
    return ".".join(parts)


def _position(code: Any, lasti: int, lineno: int) -> tuple:
    """Where the running instruction is in the source: (line, end line, column, end
    column) of its expression where the interpreter knows it (3.11+); else (line,
    the index of the instruction among the calls of that line, or -1)."""
    if _HAS_POSITIONS and lasti >= 0:
        for i, p in enumerate(code.co_positions()):
            if i == lasti // 2:
                if p[0] is not None and p[2] is not None:
                    return p
                break
        return (lineno, -1)
    return (lineno, _call_index(code, lasti, lineno))


def _call_index(code: Any, lasti: int, lineno: int) -> int:
    """Python 3.10: the rank of the call instruction at ``lasti`` among the call
    instructions of line ``lineno`` (calls run in the order their expressions end)."""
    import dis

    line, rank = None, -1
    for ins in dis.get_instructions(code):
        if ins.starts_line is not None:
            line = ins.starts_line
        if line == lineno and ins.opname.startswith("CALL"):
            rank += 1
            if ins.offset == lasti:
                return rank
    return -1


# ------------------------------------------------------------------ the source

def _parses(filename: str, line: int, globs: dict,
            cover: tuple = (0, 0)) -> Iterator[tuple[ast.AST, int]]:
    """Parses of the source lines around ``line`` (and at least the lines ``cover``
    spans, when given), smallest windows first, as (tree, offset): node line ``n``
    is source line ``n + offset``."""
    lines = linecache.getlines(filename, globs)
    if not lines or line > len(lines):
        return
    low, high = cover if cover[0] else (line, line)
    for span in range(_MAX_SPAN):
        for start in range(max(1, line - span), line + 1):
            end = start + span
            if end > len(lines):
                break
            if start > low or end < high:
                continue
            first = lines[start - 1]
            indented = first[:1] in (" ", "\t")
            text = "".join(lines[start - 1:end]).rstrip()
            if indented:
                text = "if 1:\n" + text
            if text.endswith(":"):  # a compound statement's header (`with Lock() as l:`)
                text += "\n" + " " * (len(first) - len(first.lstrip()) + 4) + "pass"
            try:
                tree = ast.parse(text + "\n")
            except (SyntaxError, ValueError):
                continue
            yield tree, start - 1 - (1 if indented else 0)


_VALUE_KEEPERS: tuple = ()  # (ast.BoolOp, ast.IfExp, ast.Await, ast.Starred)


def _import_linecache() -> None:
    global linecache
    import linecache as linecache_module

    linecache = linecache_module


def _import_parsers() -> None:
    global ast, _VALUE_KEEPERS
    import ast as ast_module

    _VALUE_KEEPERS = (ast_module.BoolOp, ast_module.IfExp, ast_module.Await, ast_module.Starred)
    ast = ast_module  # (last: the test for "imported yet")


def _simple_expression(frame: Any, code: Any, pos: tuple, library: bool,
                       module: str) -> str | None:
    """The name of the object made at ``pos`` when its line is a plain assignment
    of the call to a dotted name (``self.lock = threading.Lock()``), or of a
    ``Condition`` made around it (``self._cond = Condition(Lock())``); None when
    the line is anything else (``ast`` must tell).  Most creation sites are such
    lines, and importing ``ast`` alone costs a program 2-3 ms.

    The text is trusted only when the code agrees: the instructions after the
    call (after the Condition's) are the target's own, ending with the store
    into it, so a keyword argument (``f(\n lock=Lock(),\n)``) or a line inside
    a bracket is never taken for an assignment."""
    if len(pos) != 4 or pos[0] != pos[1]:
        return None
    line_no, _, col, end_col = pos
    lines = linecache.getlines(code.co_filename, frame.f_globals)
    if line_no > len(lines):
        return None
    text = lines[line_no - 1]
    if not text.isascii():  # (the columns are UTF-8 byte offsets)
        return None
    rest = text[end_col:].strip()
    head, eq, value = text[:col].partition("=")
    if not eq or "=" in value:
        return None
    outer = None
    if value.strip():  # Condition(Lock()): the condition's lock
        callee = value.strip()
        if not (callee.endswith("Condition(") and _dotted(callee[:-1])
                and rest[:1] == ")"):
            return None
        outer = (line_no, line_no, col - len(value.lstrip()), end_col + 1)
        rest = rest[1:].strip()
    if rest and not rest.startswith("#"):
        return None
    target = head.strip()
    start = len(head) - len(head.lstrip())
    if not _dotted(target):
        return None
    if not _stores_into(code, frame.f_lasti // 2, pos, outer,
                        (line_no, line_no, start, start + len(target))):
        return None
    base = target.split(".", 1)[0]
    cls = _class_of(frame, code, base) if base != target else None
    text = cls + target[len(base):] if cls is not None else target
    return _qualified(text, cls, base == target, code, library, module)[:MAX_EXPR]


def _dotted(text: str) -> bool:
    return all(part.isidentifier() for part in text.split("."))


def _stores_into(code: Any, index: int, call: tuple, outer: tuple | None,
                 target: tuple) -> bool:
    """Whether the instructions from ``index`` on are the call at ``call`` (then
    the call at ``outer``, when given), then only the target's (each within its
    span, which the last, the store, covers)."""
    expect = [call] + ([outer] if outer is not None else [])
    line, _, start, end = target
    for i, p in enumerate(code.co_positions()):
        if i < index:
            continue
        if expect:
            if p == expect[0]:
                continue
            expect.pop(0)
            if expect and p == expect[0]:
                continue
            if expect:
                return False
        if p[0] != line or p[1] != line or p[2] != start or p[3] is None or p[3] > end:
            return False
        if p[3] == end:
            return True
    return False


def _expression(frame: Any, code: Any, pos: tuple, library: bool, module: str) -> str:
    """The name the source gives the object made at ``pos`` ('' when none)."""
    # The smallest window that parses may be a fragment of the statement (the
    # `threading.Lock()` line of `big = (` ... `)`): larger ones are tried until
    # one says where the value goes.
    cover = _enclosing_lines(code, pos) if len(pos) == 4 else (0, 0)
    for tree, offset in _parses(code.co_filename, pos[0], frame.f_globals, cover):
        node = _made_at(tree, offset, pos)
        if node is None:
            continue
        parents: dict[ast.AST, ast.AST] = {}
        for parent in ast.walk(tree):
            for child in ast.iter_child_nodes(parent):
                parents[child] = parent
        # a Subscript made it (a defaultdict(Lock)'s item): named by the subscript
        target = node if isinstance(node, ast.Subscript) else _target_of(node, parents)
        if target is not None:
            return _render(target, frame, code, library, module)[:MAX_EXPR]
    return ""


def _enclosing_lines(code: Any, pos: tuple) -> tuple:
    """(first, last) line of the expressions around the one at ``pos``, as the
    code's instructions place them: a window of fewer lines is a fragment of the
    statement (``lock=Lock()`` on a line of its own in a call parses as an
    assignment).  (0, 0) when they span more lines than a window may."""
    line, end_line, col, end_col = pos
    first, last = line, end_line
    for p in code.co_positions():
        if None in p or (p[0], p[2]) > (line, col) or (p[1], p[3]) < (end_line, end_col):
            continue
        first, last = min(first, p[0]), max(last, p[1])
    return (first, last) if last - first < _MAX_SPAN else (0, 0)


def _made_at(tree: ast.AST, offset: int, pos: tuple) -> ast.AST | None:
    """The expression node at ``pos``."""
    if len(pos) == 4:
        line, end_line, col, end_col = pos
        for node in ast.walk(tree):
            if isinstance(node, ast.expr) and getattr(node, "end_lineno", None) is not None \
                    and (node.lineno + offset, node.col_offset, node.end_lineno + offset,
                         node.end_col_offset) == (line, col, end_line, end_col):
                return node
        return None
    line, rank = pos
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
             and n.lineno + offset == line and n.end_lineno + offset == line]
    if len(calls) == 1:
        return calls[0]
    calls.sort(key=lambda n: (n.end_col_offset, -n.col_offset))
    if 0 <= rank < len(calls) and _calls_on_line_match(tree, offset, line, len(calls)):
        return calls[rank]
    return None


def _calls_on_line_match(tree: ast.AST, offset: int, line: int, n: int) -> bool:
    """3.10: trust the rank only when every call of the line starts and ends on it."""
    return all(c.end_lineno + offset == line for c in ast.walk(tree)
               if isinstance(c, ast.Call) and c.lineno + offset == line)


def _target_of(node: ast.AST, parents: dict) -> ast.AST | None:
    """What the value of ``node`` is stored in: a Name/Attribute/Subscript node, or a
    synthetic Subscript for an element of a container literal (None when nothing)."""
    while True:
        parent = parents.get(node)
        if parent is None:
            return None
        if isinstance(parent, (ast.Assign, ast.AnnAssign, ast.NamedExpr)):
            if parent.value is not node:
                return None
            target = parent.targets[0] if isinstance(parent, ast.Assign) else parent.target
            return target
        if isinstance(parent, _VALUE_KEEPERS):
            if isinstance(parent, ast.IfExp) and parent.test is node:
                return None
            node = parent
            continue
        if isinstance(parent, ast.keyword) and parent.arg == "lock":
            node, parent = parent.value, parents.get(parent)  # Condition(lock=Lock())
        if isinstance(parent, ast.Call) and node in parent.args[:1] + [
                k.value for k in parent.keywords if k.arg == "lock"]:
            # Condition(Lock()): the condition's lock, named like the condition
            if _callee(parent).endswith("Condition"):
                node = parent
                continue
            return None
        if isinstance(parent, (ast.Tuple, ast.List)):
            index = parent.elts.index(node)
            outer = parents.get(parent)
            if isinstance(outer, ast.Assign) and outer.value is parent \
                    and isinstance(outer.targets[0], (ast.Tuple, ast.List)) \
                    and len(outer.targets[0].elts) == len(parent.elts):
                return outer.targets[0].elts[index]  # a, b = Lock(), Lock()
            container = _target_of(parent, parents)
            return _item(container, ast.Constant(index)) if container is not None else None
        if isinstance(parent, ast.Dict):
            if node not in parent.values:
                return None
            key = parent.keys[parent.values.index(node)]
            container = _target_of(parent, parents)
            if container is None or not isinstance(key, ast.Constant):
                return None
            return _item(container, key)
        if isinstance(parent, ast.comprehension):
            return None
        if isinstance(parent, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            if getattr(parent, "elt", None) is not node and getattr(parent, "value", None) is not node:
                return None
            container = _target_of(parent, parents)
            return _item(container, ast.Name("*")) if container is not None else None
        return None


def _item(container: ast.AST, key: ast.AST) -> ast.AST:
    return ast.Subscript(value=container, slice=key, ctx=ast.Load())


def _callee(call: ast.Call) -> str:
    f = call.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""


def _render(target: ast.AST, frame: Any, code: Any, library: bool, module: str) -> str:
    """``target`` as text, with ``self``/``cls`` replaced by the class and library
    names qualified by their module."""
    base = target
    while isinstance(base, (ast.Attribute, ast.Subscript, ast.Starred)):
        base = base.value
    if not isinstance(base, ast.Name):
        return ""
    cls = _class_of(frame, code, base.id) if base is not target else None
    if cls is not None:
        base.id = cls
    return _qualified(ast.unparse(target), cls, base is target, code, library, module)


def _qualified(text: str, cls: str | None, bare: bool, code: Any, library: bool,
               module: str) -> str:
    """A target's ``text`` (its base already the class ``cls``, when a method's
    ``self``/``cls``) qualified by its library's module and scope."""
    public = _public_module(module) or module
    if cls is not None:
        return f"{public}.{text}" if library and "." not in public else text
    if not library:
        return text
    if bare and code.co_name == "<module>":
        return f"{public}.{text}"  # a module global: logging._lock
    scope = _scope(code)
    return f"{public}.{scope}.{text}" if scope else f"{public}.{text}"


def _class_of(frame: Any, code: Any, name: str) -> str | None:
    """The class whose method ``code`` is, when ``name`` is its first parameter
    (``self``/``cls``; in a comprehension inside a method, ``self``/``cls``)."""
    first = code.co_varnames[0] if code.co_argcount else None
    comprehension = code.co_name.startswith("<") and code.co_name != "<module>"
    if name != first and not (comprehension and name in ("self", "cls")):
        return None
    if _HAS_QUALNAME:
        # Account.__init__ -> Account; Account.__init__.<locals>.<listcomp> -> Account
        parts = code.co_qualname.split(".")
        if comprehension and len(parts) >= 3 and parts[-2] == "<locals>":
            parts = parts[:-2]
        if len(parts) >= 2 and not parts[-2].startswith("<"):
            return parts[-2]
        return None
    # 3.10: the class in the MRO of self's (cls's) type whose method this code is
    f = frame if name in frame.f_locals else frame.f_back
    obj = f.f_locals.get(name) if f is not None else None
    if obj is None:
        return None
    method = f.f_code
    mro = (obj if isinstance(obj, type) else type(obj)).__mro__
    for klass in mro:
        for value in vars(klass).values():
            value = getattr(value, "__func__", value)
            if getattr(value, "__code__", None) is method:
                return klass.__qualname__
    return mro[0].__qualname__


def _scope(code: Any) -> str:
    """The function (qualified by its class) a library local belongs to."""
    qual = getattr(code, "co_qualname", code.co_name)
    return ".".join(p for p in qual.split(".") if not p.startswith("<"))



_core.work_out_name = name_at
_core.user_site = user_site
