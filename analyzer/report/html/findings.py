"""The per-finding parts of the HTML report: plain-language explanation, the
lockdep-style unsafe-scenario table, code sites with stacks, facts and fix advice."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...paths import shown_path
from . import format as fmt
from .safe import Safe, h, join

KIND_TITLES = {
    "deadlock": "Deadlock",
    "self-deadlock": "Self-deadlock",
    "potential-deadlock": "Potential deadlock",
    "wait-cycle": "Wait cycle",
    "held-across-await": "Lock held across await",
    "long-hold": "Long hold",
    "stalled": "Stalled wait",
    "acquire-timeout": "Acquire timeout",
    "guarded-cycle": "Guarded cycle",
    "hot-lock": "Hot lock",
}

CYCLE_KINDS = ("potential-deadlock", "deadlock", "guarded-cycle")

_SAFETY_NET = ("As a safety net, give blocking calls a timeout (<code>lock.acquire(timeout=…)</code>, "
               "<code>asyncio.wait_for(…)</code>) and log what is held when it expires, so a "
               "future mistake costs an error message instead of a hung service.")

ADVICE: dict[str, list[str]] = {
    "potential-deadlock": [
        "Choose <b>one consistent lock order</b> for these locks and take them in that order "
        "everywhere (the code site that takes them the other way round is listed above).",
        "If the locks always go together, merge them into one lock; if the inner work does not "
        "need the outer lock, release it first (smallest lock scope).",
        _SAFETY_NET,
    ],
    "deadlock": [
        "This one really happened. Make every path take these locks in <b>one consistent order</b>, "
        "or merge them into one lock.",
        "Keep lock scopes small: do the slow work or the <code>await</code> before taking the lock, "
        "so nothing else is requested while it is held.",
        _SAFETY_NET,
    ],
    "self-deadlock": [
        "<b>Do not re-enter a non-reentrant lock.</b> Split the code into a public function that "
        "takes the lock and an internal <code>_unlocked</code> variant that expects it held, and "
        "call the internal one from inside the locked region.",
        "Only if re-entry is really intended, use <code>threading.RLock</code> (there is no "
        "reentrant asyncio lock: restructure instead).",
        _SAFETY_NET,
    ],
    "wait-cycle": [
        "<b>Never hold a lock while waiting</b> on an event, queue, join or task that needs that "
        "lock to make progress. Release the lock before waiting, or use "
        "<code>Condition.wait()</code>, which releases its lock while waiting.",
        "Make the signalling side independent of the lock (signal first, then lock), or hand the "
        "work over through a queue instead of shared state.",
        _SAFETY_NET,
    ],
    "held-across-await": [
        "<b>Smallest lock scope:</b> do the <code>await</code> (I/O, sleep, other tasks) before taking "
        "the lock, or copy what you need under the lock, release it, then await.",
        "Never hold a <code>threading</code> lock in a coroutine across an await: another task on the "
        "same loop that blocks on it freezes the whole event loop. Use <code>asyncio.Lock</code>, or "
        "move the blocking part to a thread with <code>asyncio.to_thread</code>.",
        _SAFETY_NET,
    ],
    "long-hold": [
        "<b>Smallest lock scope:</b> do the slow work (I/O, sleeps, computation, logging) before taking "
        "the lock or after releasing it; hold it only to read or update the shared state.",
        "Everything that waits for this lock waits as long as the slowest holder — see the hold-time "
        "distribution under Lock statistics.",
    ],
    "stalled": [
        "Find who should have released the lock or signalled the resource (see the timeline): "
        "a missed <code>release()</code>, a signal that was never sent, or a waiter that holds what "
        "the signaller needs.",
        _SAFETY_NET,
    ],
    "acquire-timeout": [
        "The timeout did its job as a safety net, but the holder kept the lock too long: shorten "
        "its critical section (<b>smallest lock scope</b>: slow work and awaits outside the lock).",
        "Check that the code handles the failed acquire (retries, error) and does not continue "
        "without the lock.",
    ],
    "hot-lock": [
        "Reduce contention: hold the lock for less time (move work out of the critical section), "
        "split it (one lock per key or shard), or replace shared state with a queue.",
        "Informational: a busy lock is not a bug by itself.",
    ],
    "guarded-cycle": [
        "No action needed: this cycle cannot deadlock for the reason given. Keep that reason intact "
        "when refactoring — removing the common lock or the start/join order would turn it into a "
        "real potential deadlock.",
    ],
}


def kind_title(kind: str) -> str:
    return KIND_TITLES.get(kind, kind.replace("-", " ").capitalize())


def actor_label(actor: dict | None) -> str:
    if not actor:
        return "?"
    return str(actor.get("name") or "?")


def actor_kind(actor: dict | None) -> str:
    return (actor or {}).get("kind") or "thread"


def _lk(names: fmt.LockNames, lock_id: Any, fallback: Any = None) -> Safe:
    return h('<span class="lock">{}</span>', names.label(lock_id, fallback))


def _who(actor: dict | None) -> Safe:
    return h('<span class="actor">{}</span> <span class="muted">({})</span>',
             actor_label(actor), actor_kind(actor))


def _code(text: Any) -> Safe:
    return h("<code>{}</code>", text) if text else Safe("<span class=\"muted\">unknown site</span>")


def _request_of(step: dict) -> tuple[Any, Any, str]:
    """(id, display fallback, verb) of what a step asked for: a lock or something waited on."""
    req = step.get("requests") or {}
    if req.get("lock") is not None:
        return req.get("lock"), req.get("name"), "lock"
    res = req.get("resource") or req.get("id") or req.get("what")
    return res, req.get("name") or res, "wait"


def _cycle_lock_held(step: dict, wanted: Any) -> dict | None:
    holds = step.get("holds") or []
    for hold in holds:
        if wanted is not None and str(hold.get("lock")) == str(wanted):
            return hold
    return holds[-1] if holds else None


def explanation(f: dict, names: fmt.LockNames) -> Safe:
    """A few sentences saying in plain words what the finding means."""
    kind = f.get("kind")
    d = f.get("details") or {}
    steps = f.get("steps") or []
    threads = f.get("threads") or []
    paras: list[Safe] = []
    if kind in CYCLE_KINDS and steps:
        paras.append(_cycle_story(f, names))
        if kind == "potential-deadlock":
            paras.append(Safe(
                "Nothing orders these threads/tasks in time and they share no common lock that would "
                "keep them apart. In this run the timing was lucky; under another schedule each takes its "
                "first lock, then waits forever for the lock the next one holds."))
        elif kind == "deadlock":
            how = {"timeout": "an acquire timed out", "cancel": "a task was cancelled"}.get(
                d.get("resolved_by") or "", "it ended")
            if never_ended(d):
                tail = "It never ended: they were still blocked when the trace ended."
            else:
                tail = f"It was broken after that because {how}."
            paras.append(h("This really happened: all of them were blocked at once, each waiting for a lock "
                           "held by the next, for {}{}. ", "at least " if never_ended(d) else "",
                           fmt.duration(d.get("duration_ns"))) + Safe(esc_text(tail)))
        else:
            paras.append(h("It cannot deadlock: {}", _guard_reason(f, names)))
    elif kind == "self-deadlock":
        lock = (f.get("locks") or [{}])[0]
        paras.append(h("{} asked for {} (a non-reentrant <code>{}</code>) while it already held it. "
                       "A non-reentrant lock cannot be taken twice by its owner: the thread/task waits "
                       "for itself{}.", _who(threads[0] if threads else None), _lk(names, lock),
                       lock.get("type") or "lock",
                       h(" — it never ended: still blocked {} later, when the trace ended",
                         fmt.duration(d.get("duration_ns"))) if never_ended(d) and d.get("duration_ns")
                       else " — it never ended" if never_ended(d)
                       else h(" (blocked for {})", fmt.duration(d.get("duration_ns"))) if d.get("duration_ns")
                       else ""))
    elif kind == "wait-cycle":
        held = d.get("held_lock")
        res = d.get("resource")
        res_text = res.get("name") or res.get("id") if isinstance(res, dict) else res
        held_id = held.get("id") if isinstance(held, dict) else held
        paras.append(h("{} waited on <b>{}</b> while holding {}, and the thread/task that signals "
                       "<b>{}</b> takes {} before it signals. Each waits for the other: the waiter for the "
                       "signal, the signaller for the lock.",
                       _who(threads[0] if threads else None), res_text or "a resource",
                       _lk(names, held_id), res_text or "it", _lk(names, held_id)))
        if never_ended(d):
            paras.append(h("<b>The program hung here:</b> both were still blocked when the trace ended{}.",
                           h(", for {} until the process was last seen", fmt.duration(d["blocked_ns"]))
                           if d.get("blocked_ns") is not None else ""))
        elif d.get("ended"):
            paras.append(h("This really happened: both were blocked{}, until {}.",
                           h(" for {}", fmt.duration(d["blocked_ns"])) if d.get("blocked_ns") is not None else "",
                           _ENDED_BY.get(str(d["ended"]), "the wait ended")))
    elif kind == "held-across-await":
        lock = d.get("lock") or (f.get("locks") or [{}])[0]
        holder = d.get("holder") if isinstance(d.get("holder"), dict) else (threads[0] if threads else None)
        text = h("Task {} held {}{} while it was suspended at an <code>await</code> and other tasks of "
                 "the same event loop ran, for {}; {} waited for the lock meanwhile.",
                 actor_label(holder), _lk(names, lock),
                 h(" (taken at {})", _code(d["acquired_at"])) if d.get("acquired_at") else "",
                 fmt.duration(d.get("duration_ns")), fmt.plural(int(d.get("waiters") or 0), "task"))
        if d.get("loop_froze") or (d.get("loop_froze") is None and f.get("severity") in ("error", "critical")):
            text = text + Safe(" It is a <b>threading</b> lock: when another task on the same loop thread "
                               "blocked on it, the whole event loop froze.")
        paras.append(text)
    elif kind == "long-hold":
        lock_id = d.get("lock") or ((f.get("locks") or [{}])[0]).get("id")
        paras.append(h("{} was held longer than {} {} (longest: {}). Everything that needs it waits "
                       "at least that long.", _lk(names, lock_id), fmt.duration(d.get("threshold_ns")),
                       fmt.times(int(d.get("holds_over") or f.get("count") or 0)),
                       fmt.duration(d.get("max_hold_ns"))))
    elif kind == "stalled":
        paras.append(h("{} waited for {}{} and was still waiting when the trace ended, {} later. The wait is "
                       "part of no cycle; whoever should have released or signalled never did.", _who(threads[0] if threads else None), _stalled_on(f, names),
                       h(" at {}", _code(_first_site(f))) if _first_site(f) else "",
                       fmt.duration(d.get("duration_ns"))))
    elif kind == "acquire-timeout":
        lock_id = d.get("lock") or ((f.get("locks") or [{}])[0]).get("id")
        holders = d.get("holders") or []
        htext = (h(" The lock was held at that moment by code at {}.",
                   join((_code(x.get("site") if isinstance(x, dict) else x) for x in holders), ", "))
                 if holders else Safe(""))
        paras.append(h("Acquires of {} gave up: {} timed out and {} were cancelled; the longest wait "
                       "was {}.{}", _lk(names, lock_id), fmt.count(d.get("timeouts") or 0),
                       fmt.count(d.get("cancels") or 0), fmt.duration(d.get("max_wait_ns")), htext))
    elif kind == "hot-lock":
        lock_id = d.get("id") or ((f.get("locks") or [{}])[0]).get("id")
        acq = int(d.get("acquisitions") or 0)
        con = int(d.get("contentions") or 0)
        waited = con - int(d.get("timeouts") or 0) - int(d.get("cancels") or 0)
        share = f" ({100 * waited / acq:.0f} % of them)" if acq and 0 <= waited <= acq else ""
        open_holds = int(d.get("open_holds") or 0)
        if d.get("hold_p99_ns") is None and open_holds:
            held = h("it was still held when the trace ended ({} never released)",
                     fmt.plural(open_holds, "hold"))
        else:
            held = h("it was held for {} in total (p99 {}){}", fmt.duration(d.get("hold_total_ns")),
                     fmt.duration(d.get("hold_p99_ns")),
                     h("; {} still held when the trace ended", fmt.plural(open_holds, "hold")) if open_holds else "")
        paras.append(h("{} is one of the busiest locks: {}; callers had to wait {}{}; waiting took {} in total "
                       "(longest {}), and {}.", _lk(names, lock_id), fmt.plural(acq, "acquisition"),
                       fmt.times(con), share, fmt.duration(d.get("wait_total_ns")),
                       fmt.duration(d.get("wait_max_ns")), held))
    if f.get("partial"):
        paras.append(h("<b>Partial evidence:</b> {}.", f.get("partial_reason") or "events were lost"))
    return join(h("<p>{}</p>", p) for p in paras)


def _first_site(f: dict) -> Any:
    """The site of the finding's first step, else its first site."""
    steps, sites = f.get("steps") or [], f.get("sites") or []
    if steps and steps[0].get("site"):
        return steps[0]["site"]
    return (sites[0].get("site") if isinstance(sites[0], dict) else sites[0]) if sites else None


def _stalled_on(f: dict, names: fmt.LockNames) -> Safe:
    """What a stalled wait waited for: the resource of its step, else its lock."""
    steps = f.get("steps") or []
    req = (steps[0].get("requests") or {}) if steps else {}
    if req.get("name") or req.get("type"):
        return h("{} <b>{}</b>", req.get("type") or "", req.get("name") or "?")
    locks = f.get("locks") or []
    return _lk(names, locks[0]) if locks else Safe("a lock or resource")


def esc_text(text: str) -> Safe:
    return h("{}", text)


def _cycle_story(f: dict, names: fmt.LockNames) -> Safe:
    steps = f["steps"]
    cycle = [(_request_of(s)) for s in steps]
    chain = [names.label(r[0], r[1]) for r in cycle]
    if chain:
        chain = chain[-1:] + chain[:-1]
    header = h("Lock order cycle <b>{}</b> — {} take these locks in conflicting orders:",
               " → ".join([*chain, chain[0]]) if chain else "?",
               fmt.plural(len({str((s.get('actor') or {}).get('id')) for s in steps}), "thread/task",
                          "threads/tasks"))
    items = []
    for i, s in enumerate(steps):
        prev = _request_of(steps[i - 1])[0]
        held = _cycle_lock_held(s, prev)
        req_id, req_name, _verb = _request_of(s)
        held_part = (h("took {} at {} and, still holding it, ", _lk(names, held.get("lock"), held.get("name")),
                       _code(held.get("acquired_at"))) if held else Safe(""))
        items.append(h("<li>{} {}asked for {} at {}.</li>", _who(s.get("actor")), held_part,
                       _lk(names, req_id, req_name), _code(s.get("site"))))
    return h("{}<ul class=\"story\">{}</ul>", header, join(items))


def _guard_reason(f: dict, names: fmt.LockNames) -> Safe:
    d = f.get("details") or {}
    reason = d.get("reason")
    if reason == "gate-lock":
        gates = join((_lk(names, g) for g in d.get("gate_locks") or []), ", ")
        text = h("every thread/task on the cycle holds {} at the same time, so only one of them can be "
                 "inside at once (a gate lock).", gates or "a common lock")
    elif reason == "single-actor":
        text = Safe("all its edges come from one thread/task, which cannot wait for itself across "
                    "these locks.")
    elif reason == "ordered":
        text = h("{}.", (d.get("order") or "the threads are ordered by thread start/join").rstrip("."))
    else:
        text = h("{}", reason or "the analyzer ruled it out")
    if d.get("explanation"):
        text = text + h(" {}", d["explanation"])
    return text


def scenario(f: dict, names: fmt.LockNames) -> Safe:
    """The lockdep 'possible unsafe locking scenario' table for a cycle finding."""
    steps = f.get("steps") or []
    if f.get("kind") not in ("potential-deadlock", "deadlock", "wait-cycle") or not steps:
        return Safe("")
    k = len(steps)
    heads = join(h("<th>{} {}<br><span class=\"actor\">{}</span></th>",
                   "Task" if actor_kind(s.get("actor")) == "task" else "Thread", i + 1,
                   actor_label(s.get("actor"))) for i, s in enumerate(steps))
    rows: list[Safe] = []
    n = 0

    def row(col: int, cell: Safe) -> None:
        nonlocal n
        n += 1
        cells = [h("<td>{}</td>", cell) if c == col else Safe("<td></td>") for c in range(k)]
        rows.append(h("<tr><td class=\"stepno\">{}</td>{}</tr>", n, join(cells)))

    for i, s in enumerate(steps):
        prev_id = _request_of(steps[i - 1])[0]
        held = _cycle_lock_held(s, prev_id)
        if held:
            row(i, h("<code>lock({});</code><div class=\"site\">{}</div>", names.label(held.get("lock"), held.get("name")),
                     held.get("acquired_at") or ""))
    for i, s in enumerate(steps):
        req_id, req_name, verb = _request_of(s)
        nxt = (i + 1) % k
        who = h("{} {}", "Task" if actor_kind(steps[nxt].get("actor")) == "task" else "Thread", nxt + 1)
        if verb == "lock":
            call, why = "lock", h("held by {}", who)
        else:
            rtype = str((s.get("requests") or {}).get("type") or "")
            call = "join" if rtype in ("thread", "task") else "wait"
            why = h("only {} can end this wait", who)
        row(i, h("<code>{}({});</code> <span class=\"blocks\">← blocks: {}</span>"
                 "<div class=\"site\">{}</div>", call, names.label(req_id, req_name), why, s.get("site") or ""))
    caption = ("What happened" if f.get("kind") == "deadlock" else "Possible unsafe scenario")
    return h("<table class=\"scenario\"><caption>{}</caption><thead><tr><th></th>{}</tr></thead>"
             "<tbody>{}<tr><td></td><td class=\"deadlock\" colspan=\"{}\">*** DEADLOCK ***</td></tr>"
             "</tbody></table>", caption, heads, join(rows), k)


def _is_library(path: Any) -> bool:
    """Frames outside the program's source root (the analyzer makes those paths
    relative): the standard library (<stdlib>/), site-packages, the recorder."""
    text = str(path or "").replace("\\", "/")
    # lockscope's own recorder modules (recorder/_threading.py, ...) are library too, even
    # when the program runs from a checkout of lockscope
    return (text.startswith(("/", "<")) or (len(text) > 2 and text[1] == ":")
            or text.startswith("recorder/_"))


def frames_of(stack: list | None, root: str | None = None, cwd: str | None = None) -> list[tuple]:
    """(path, line, func) per frame, paths shown as the analyzer shows sites
    (relative to the source root `root`; `cwd`: the run's recorded cwd)."""
    def shown(path: Any) -> Any:
        return shown_path(path, root, cwd) if isinstance(path, str) else path

    frames = []
    for frame in stack or []:
        if isinstance(frame, (list, tuple)) and len(frame) >= 3:
            frames.append((shown(frame[0]), frame[1], frame[2]))
        elif isinstance(frame, dict):
            frames.append((shown(frame.get("path") or frame.get("file")), frame.get("line"), frame.get("func")))
    return frames


def stack_list(frames: list[tuple]) -> Safe:
    """A stack, innermost first; runs of library frames are folded."""
    if not frames:
        return Safe("")
    out: list[Safe] = []
    i = 0
    while i < len(frames):
        j = i
        while j < len(frames) and _is_library(frames[j][0]):
            j += 1
        if j - i >= 2:
            files = ", ".join(dict.fromkeys(str(f[0]).replace("\\", "/").rsplit("/", 1)[-1] for f in frames[i:j]))
            out.append(h('<details class="libframes"><summary>{} library frames ({})</summary>{}</details>',
                         j - i, files, join(_frame(f, True) for f in frames[i:j])))
            i = j
        else:
            out.append(_frame(frames[i], _is_library(frames[i][0])))
            i += 1
    return h('<div class="stack">{}</div>', join(out))


def _frame(f: tuple, library: bool) -> Safe:
    path, line, func = f
    return h('<div class="frame{}"><code>{}</code> <span class="muted">{}:{}</span></div>',
             " lib" if library else "", func, path, line)


def sites_block(f: dict, stack_of: Callable[[str], list | None], root: str | None = None,
                cwd: str | None = None, names: fmt.LockNames | None = None) -> Safe:
    """Every code site of the finding, with its stack when recorded."""
    def lock_text(lock_id: Any, name: Any) -> str:
        return names.label(lock_id, name) if names is not None and lock_id is not None else str(name or "?")

    step_stacks = {s.get("site"): s.get("stack") for s in f.get("steps") or [] if s.get("stack")}
    roles: dict[str, list[str]] = {}
    for i, s in enumerate(f.get("steps") or []):
        req_id, req_name, verb = _request_of(s)
        roles.setdefault(s.get("site"), []).append(
            f"step {i + 1}: {actor_label(s.get('actor'))} {'requests' if verb == 'lock' else 'waits for'} "
            f"{lock_text(req_id, req_name) if verb == 'lock' else req_name or '?'}")
        for hold in s.get("holds") or []:
            roles.setdefault(hold.get("acquired_at"), []).append(
                f"step {i + 1}: {actor_label(s.get('actor'))} took {lock_text(hold.get('lock'), hold.get('name'))}")
    items = []
    for i, site in enumerate(f.get("sites") or []):
        text = site.get("site") if isinstance(site, dict) else site
        func = site.get("func") if isinstance(site, dict) else None
        stack = frames_of(step_stacks.get(text) or (stack_of(text) if text else None), root, cwd)
        if stack and f"{stack[0][0]}:{stack[0][1]}" == text:
            stack = stack[1:]  # the innermost frame is the site itself: show its callers
        role = roles.get(text) or []
        items.append(h("<li>{}<code class=\"sitecode\">{}</code>{}{}{}</li>",
                       Safe('<span class="badge primary">primary</span> ') if i == 0 else "",
                       text, h(" in <code>{}</code>", func) if func else "",
                       h("<div class=\"muted\">{}</div>", "; ".join(role)) if role else "",
                       h('<div class="called">called from</div>{}', stack_list(stack)) if stack else ""))
    if not items:
        return Safe("")
    return h("<h4>Code sites</h4><ul class=\"sites\">{}</ul>", join(items))


def facts(f: dict, start_of_run: Callable[[str | None], int | None]) -> Safe:
    """How often, first and last seen, how long."""
    d = f.get("details") or {}
    start = start_of_run(f.get("run"))

    def when(ts_key: str, wall_key: str) -> Safe:
        ts = f.get(ts_key)
        rel = h(" <span class=\"muted\">({} into the run)</span>", fmt.duration(ts - start)) \
            if ts is not None and start is not None else ""
        return h("{}{}", fmt.wall(f.get(wall_key)), rel)

    rows: list[tuple[str, Any]] = [("Seen", fmt.times(int(f.get("count") or 0)))]
    if f.get("first_wall"):
        rows.append(("First seen", when("first_ts", "first_wall")))
    if f.get("last_wall"):
        rows.append(("Last seen", when("last_ts", "last_wall")))
    hung = never_ended(d, f.get("kind"))
    for key, label in (("duration_ns", "Lasted"), ("blocked_ns", "Blocked for"), ("max_hold_ns", "Longest hold"),
                       ("max_wait_ns", "Longest wait"), ("threshold_ns", "Threshold")):
        if d.get(key) is not None:
            if hung and key in ("duration_ns", "blocked_ns"):
                rows.append(("Blocked for", f"{fmt.duration(d[key])}, until the trace ended"))
            else:
                rows.append((label, fmt.duration(d[key])))
    if "ended" in d or hung:
        rows.append(("Ended", "no — still blocked when the trace ended" if hung
                     else ended_text(d["ended"])))
    if d.get("resolved_by"):
        rows.append(("Broken by", d["resolved_by"]))
    if d.get("reason"):
        rows.append(("Reason", d["reason"]))
    if f.get("threads"):
        rows.append(("Threads/tasks", join((h("{} <span class=\"muted\">({})</span>", actor_label(t), actor_kind(t))
                                            for t in f["threads"]), ", ")))
    rows.append(("Fingerprint", h("<code>{}</code>", f.get("fingerprint") or "–")))
    return h("<table class=\"facts\">{}</table>",
             join(h("<tr><th>{}</th><td>{}</td></tr>", k, v) for k, v in rows))


_ENDED_BY = {"timeout": "the wait timed out", "cancel": "it was cancelled", "cancelled": "it was cancelled",
             "error": "the wait ended by an exception", "lost": "unknown: its end was in lost events"}


def never_ended(details: dict, kind: str | None = None) -> bool:
    """True when the finding's wait was still going on when the trace ended (a hang).

    A stalled wait never ended by definition; otherwise `ended` is False, or the
    string 'end-of-trace' (what the rules write for a wait with no outcome), or
    `hung` is set (the wait-cycle rule)."""
    return (kind == "stalled" or details.get("hung") is True or details.get("ended") is False
            or details.get("ended") == "end-of-trace")


def ended_text(ended: Any) -> str:
    """The 'Ended' fact of a wait that did end: how."""
    if isinstance(ended, str) and ended:
        return f"yes — {_ENDED_BY.get(ended, ended)}"
    return "yes"


def worst_table(f: dict) -> Safe:
    worst = (f.get("details") or {}).get("worst") or []
    if not worst:
        return Safe("")
    rows = join(h("<tr><td class=\"num\">{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                  fmt.duration(w.get("duration_ns")), w.get("site"),
                  actor_label(w.get("actor")) if isinstance(w.get("actor"), dict) else w.get("actor"),
                  fmt.wall_time(w.get("wall"))) for w in worst)
    return h("<h4>Longest holds</h4><table class=\"grid\"><thead><tr><th>held for</th><th>taken at</th>"
             "<th>by</th><th>at</th></tr></thead><tbody>{}</tbody></table>", rows)


def advice(kind: str) -> Safe:
    tips = ADVICE.get(kind) or ["See the message above; check the listed sites."]
    # The advice strings are our own constant markup, never trace data.
    return h("<h4>How to fix</h4><ul class=\"advice\">{}</ul>",
             join(Safe(f"<li>{t}</li>") for t in tips))
