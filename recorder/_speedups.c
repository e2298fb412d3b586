/* lockscope recorder: C versions of the two hottest paths.
 *
 * 1. LockCore, the base of the traced threading.Lock / RLock: acquire, release,
 *    __enter__ and __exit__.  The uncontended path (try the inner lock, stamp the
 *    time, find the call site in the site cache, append one event tuple to the
 *    thread's buffer) runs without a Python frame; everything rarer (contention,
 *    arguments, a site seen for the first time, a thread seen for the first time,
 *    a loop thread's task lookup) calls back into the pure-Python recorder, which
 *    stays the reference implementation (recorder/_threading.py, recorder/_core.py).
 * 2. The writer's encoder and drain: turns event tuples whose definitions are
 *    already written into JSON lines, and takes a buffer's events in one call.
 * 3. define(): the definition record of a primitive created at a call site seen
 *    before (frames, site, name and user site all from the Python recorder's
 *    caches); a creation the caches do not cover yet goes to the Python define().
 *
 * The buffers (internal interface with recorder/_core.py, _sink.py, _summary.py):
 * each thread's ThreadState.buf is a deque (untracked by the GC) of events.  An
 * event is an Ev (see Ev; the pure-Python recorder appends tuples of the same
 * shape): (ts, op, obj, site, task) or (ts, op, obj, site, task, extra), where obj
 * is the Ref of a lock or resource that define() gave one (see Ref; the object
 * itself for threads, tasks, jobs), site an int (0: none), task the running
 * task's recording object or None, extra a dict of plain fields.  Readers use
 * len(), indexing and unpacking only.  Every event of the C paths goes through
 * buffer_put(), the one point where an event is about to be buffered.
 *
 * Nothing here may raise into the program: a failure while recording is cleared
 * and the event is lost, exactly as in the Python version.  The lock operations
 * themselves (the inner lock's acquire/release) do raise as the originals do.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <frameobject.h>
#include <string.h>
#include <math.h>
#include <stdio.h>
#if defined(__linux__)
#include <time.h>
#endif

/* 3.11 to 3.13: the frames of the calling code are walked as the interpreter
 * keeps them (_PyInterpreterFrame), without asking for frame objects: the public
 * PyEval_GetFrame()/PyFrame_GetBack() materialise a frame object (a GC
 * allocation) for every frame they return that has none yet, which was most of
 * the cost of finding a site through library frames (a lock taken inside
 * logging or concurrent.futures) and of a definition (on 3.13, 2.1k instructions
 * of a thread's 13k in summary mode: its _started Event's primitives are made
 * through Thread.__init__).  Elsewhere (3.10, whose frames are objects anyway,
 * and 3.14+, whose frames hold tagged stack references) the public API is used. */
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030E0000 && !defined(LOCKSCOPE_PUBLIC_FRAMES)
#define LS_RAW_FRAMES 1
#define Py_BUILD_CORE 1
#include "internal/pycore_frame.h"
#undef Py_BUILD_CORE
#endif

/* Bump with every change of the interface with recorder/_core.py: a stale build
 * in a checkout then falls back to pure Python instead of failing. */
#define API_VERSION 22

#ifdef Py_GIL_DISABLED
/* The code below relies on the GIL to make each buffer operation atomic. */
#error "free-threaded CPython: the recorder runs in pure Python"
#endif

/* ------------------------------------------------------------ configuration */

static PyObject *core_dict;          /* recorder._core.__dict__ */
static PyObject *code_sites;         /* recorder._core.code_sites (never rebound) */
static PyObject *site_id_fn;         /* recorder._core.site_id */
static PyObject *site_from_fn;       /* recorder._core.site_from: site_id from a given frame */
static PyObject *current_state_fn;   /* recorder._core.current_state */
static PyObject *task_of_fn;         /* recorder._core.task_of */
static PyObject *lose_fn;            /* recorder._core.lose: count an event that did not fit */
static PyObject *end_gap_fn;         /* recorder._core.end_gap: the resync event after a loss */
static PyObject *mono_ns_fn;         /* time.monotonic_ns (used off Linux) */
static PyObject *op_acquire, *op_release, *op_wait, *op_timeout;
static PyObject *deque_type, *deque_append, *deque_popleft;
static PyObject *empty_args;  /* () */
/* deque.append and deque.popleft's C functions (METH_O, METH_NOARGS), called
 * without the method call's argument handling; NULL: call the methods. */
static PyCFunction deque_append_c, deque_popleft_c;
static PyTypeObject *state_type;     /* recorder._core.ThreadState */

/* A pool of objects freed, kept for the next ones made of the same kind (thread
 * states, event buffers; events have slabs of their own: _ev_slabs.c), its size
 * set at each drain of the writer (pool_drained) by what the program made
 * between drains: the larger of the last two intervals', between `min` and
 * `max`.  A server that starts a thread a request makes its states and buffers
 * in bursts of one drain interval (some 500 requests at the default 0.25 s, and
 * as many alive until the drain after), which a pool of fixed size 256 did not
 * cover: a third of its buffers were made and freed anyway (and their 528-byte
 * blocks went to malloc).  What is kept is no more than what was alive at once
 * during the interval.  The GIL guards it. */
typedef struct {
    void **items;
    int n, cap;             /* kept; room in items */
    int limit;              /* kept at most, now */
    int min, max;
    int made, made_before;  /* taken or made since the last drain, and in the interval before */
    unsigned long long misses;  /* (for the tests: pool_stats) taken from an empty pool */
} Pool;

#define POOL(lo, hi) {NULL, 0, 0, (lo), (lo), (hi), 0, 0, 0}

/* An object of the pool's kind, or NULL (none kept: the caller makes one). */
static inline void *
pool_take(Pool *p)
{
    if (p->made < INT_MAX)  /* (no drain for a long time) */
        p->made++;
    if (p->n > 0)
        return p->items[--p->n];
    p->misses++;
    return NULL;
}

static inline int
pool_has_room(const Pool *p)
{
    return p->n < p->limit;
}

/* Keep `x` (1), or 0: the pool is full (the caller frees it). */
static inline int
pool_keep(Pool *p, void *x)
{
    if (!pool_has_room(p))
        return 0;
    if (p->n == p->cap) {
        int cap = p->cap ? p->cap * 2 : 64;
        if (cap > p->max)
            cap = p->max;
        void **items = PyMem_Realloc(p->items, (size_t)cap * sizeof(void *));
        if (items == NULL)
            return 0;
        p->items = items;
        p->cap = cap;
    }
    p->items[p->n++] = x;
    return 1;
}

/* The writer drains: the pool's size for the next interval; what it keeps
 * beyond that is freed with `free_one`. */
static void
pool_drained(Pool *p, void (*free_one)(void *))
{
    int want = p->made > p->made_before ? p->made : p->made_before;
    p->made_before = p->made;
    p->made = 0;
    p->limit = want < p->min ? p->min : want > p->max ? p->max : want;
    while (p->n > p->limit)
        free_one(p->items[--p->n]);
}

static void
pool_decref(void *x)
{
    Py_DECREF((PyObject *)x);
}

/* _weakref.getweakrefcount, where a state's weak references are not a slot (see
 * has_weakrefs) */
static PyObject *weakref_count_fn;
/* States that nothing refers to any more, their slots emptied, for new threads
 * (see let_go_of_state); all of state_type. */
static Pool spare_states = POOL(256, 2048);
static Py_ssize_t off_buf = -1, off_gap = -1, off_aio = -1, off_tid = -1;
/* (the slots a thread's definition is made of: see define_state) */
static Py_ssize_t off_name = -1, off_parent = -1, off_parent_ref = -1, off_ident = -1,
    off_native_id = -1, off_daemon = -1, off_ts = -1, off_thread_ref = -1;
/* (and the rest of a new one's: see new_thread_state) */
static Py_ssize_t off_dropped = -1, off_dropped_reported = -1, off_ended = -1;
/* Whether the ThreadState type set by configure has every slot the C paths use
 * (states_ready() asks it a few times an event). */
static int states_ok = 0;
static PyObject *py_define_fn;       /* recorder._core.define (pure Python): define()'s slow path */
static PyObject *next_id_fn;         /* recorder._core.next_id */
static PyObject *id_counter;         /* the itertools.count it steps (NULL: call it) */

/* next_id(): a new id (new reference), or NULL with an error. */
static inline PyObject *
new_id(void)
{
    return id_counter != NULL ? Py_TYPE(id_counter)->tp_iternext(id_counter)
                              : PyObject_CallNoArgs(next_id_fn);
}
static PyObject *names_by_code;      /* recorder._core.names_by_code: id(code) -> {lasti: (expr, lib)} */
static PyObject *recorder_codes;     /* recorder._core.recorder_codes: ids of the recorder's code */
static PyObject *lib_codes;          /* recorder._core.lib_codes: id(code) -> library file? */

/* The global memory bound of recorder/_core.py (see set_buffer_cap there): events
 * in all buffers together, counted here (the GIL makes the plain counter safe),
 * checked on every append and decreased by take(). */
static Py_ssize_t buffered_total = 0;
static long long taken_total = 0;  /* events the writer took, ever (its cost report) */
static Py_ssize_t buffer_budget = 1000000;
static Py_ssize_t wake_at = 125000;
static Py_ssize_t min_thread_cap = 64;
static int wake_sent = 0;
/* wake_after_next(): the next buffered event wakes the writer once, then wake_at
 * is what it was (wake_at_normal) */
static int wake_next = 0;
static Py_ssize_t wake_at_normal;
static PyObject *waker;              /* wakes the writer (the sink's), or NULL */
/* Past high_water the thread that records pauses (without the GIL, so that the
 * writer runs), unless the writer has made no progress for stuck_ns. */
static Py_ssize_t high_water = 750000;
static long throttle_ns = 100000;
static long long stuck_ns = 1000000000LL;
static long long progress_ns = 0;    /* when the writer last took or wrote events */

static PyObject *state_buffer(PyObject *st);

/* buf.append(item) (a new reference to None, or NULL with an error).  `buf` may be
 * a thread's state, standing for its buffer not made yet (see buffer_room): it
 * is made now. */
static inline PyObject *
buf_append(PyObject *buf, PyObject *item)
{
    if (Py_TYPE(buf) == (PyTypeObject *)deque_type) {
        if (deque_append_c != NULL)
            return deque_append_c(buf, item);
        PyObject *args[2] = {buf, item};
        return PyObject_Vectorcall(deque_append, args, 2, NULL);
    }
    if (Py_TYPE(buf) == state_type) {  /* (its buffer is never a state) */
        PyObject *made = state_buffer(buf);
        if (made == NULL)
            return NULL;
        PyObject *r = buf_append(made, item);
        Py_DECREF(made);
        return r;
    }
    return PyObject_CallMethod(buf, "append", "O", item);
}

static inline long long
mono_now(void)
{
#if defined(__linux__)
    struct timespec t;
    if (clock_gettime(CLOCK_MONOTONIC, &t) == 0)
        return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
#endif
    return 0;
}

static PyObject *s_ON, *s_tls, *s_st, *s_buf, *s_gap, *s_aio, *s_name, *s_locked;
static PyObject *s_acquire, *s_release, *s_is_owned;
static PyObject *s_ls_interrupted;
static PyObject *s_ls_acquire, *s_ls_acquire_slow, *s_ls_id, *s_state_key;
static PyObject *int_zero, *int_one, *int_two;

static Py_ssize_t
slot_offset(PyTypeObject *tp, const char *name)
{
    PyObject *d = PyDict_GetItemString(tp->tp_dict, name);  /* borrowed */
    if (d == NULL || Py_TYPE(d) != &PyMemberDescr_Type)
        return -1;
    PyMemberDef *m = ((PyMemberDescrObject *)d)->d_member;
    if (m->type != T_OBJECT_EX)
        return -1;
    return m->offset;
}

static PyObject *
configure(PyObject *mod, PyObject *args)
{
    PyObject *core, *acq, *rel;
    if (!PyArg_ParseTuple(args, "OOO", &core, &acq, &rel))
        return NULL;
    if (PyInterpreterState_Get() != PyInterpreterState_Main()) {
        /* This module's state is per process (single-phase init): a subinterpreter's
         * recorder._core must not replace the main one's (the subinterpreter is
         * not recorded; its recorder runs without the accelerator). */
        PyErr_SetString(PyExc_RuntimeError, "the C accelerator serves the main interpreter only");
        return NULL;
    }
    PyObject *d = PyModule_GetDict(core);
    if (d == NULL)
        return NULL;
#define GET(var, name) do { \
        PyObject *v_ = PyDict_GetItemString(d, name); \
        if (v_ == NULL) { PyErr_SetString(PyExc_RuntimeError, "recorder._core has no " name); return NULL; } \
        Py_INCREF(v_); Py_XSETREF(var, v_); } while (0)
    GET(code_sites, "code_sites");
    GET(site_id_fn, "site_id");
    GET(site_from_fn, "site_from");
    GET(current_state_fn, "current_state");
    GET(task_of_fn, "task_of");
    GET(lose_fn, "lose");
    GET(end_gap_fn, "end_gap");
    GET(mono_ns_fn, "mono_ns");
    GET(py_define_fn, "define");
    GET(next_id_fn, "next_id");
    {   /* next_id is itertools.count(1).__next__: its count, stepped directly */
        PyObject *counter = PyObject_GetAttrString(next_id_fn, "__self__");
        if (counter == NULL)
            PyErr_Clear();
        Py_XSETREF(id_counter, counter != NULL && Py_TYPE(counter)->tp_iternext != NULL
                               && strcmp(Py_TYPE(counter)->tp_name, "itertools.count") == 0
                               ? counter : NULL);
        if (id_counter == NULL)
            Py_XDECREF(counter);
    }
    GET(names_by_code, "names_by_code");
    GET(recorder_codes, "recorder_codes");
    GET(lib_codes, "lib_codes");
#undef GET
    PyObject *st = PyDict_GetItemString(d, "ThreadState");
    if (st == NULL || !PyType_Check(st)) {
        PyErr_SetString(PyExc_RuntimeError, "recorder._core has no ThreadState");
        return NULL;
    }
    Py_INCREF(st);
    while (spare_states.n > 0)  /* (of the type set before) */
        Py_DECREF((PyObject *)spare_states.items[--spare_states.n]);
    Py_XSETREF(state_type, (PyTypeObject *)st);
    if (state_type->tp_weaklistoffset <= 0 && weakref_count_fn == NULL) {
        PyObject *wr = PyImport_ImportModule("_weakref");
        weakref_count_fn = wr != NULL ? PyObject_GetAttrString(wr, "getweakrefcount") : NULL;
        Py_XDECREF(wr);
        PyErr_Clear();  /* (without it, no state is kept: see has_weakrefs) */
    }
    off_buf = slot_offset(state_type, "_buf");
    off_gap = slot_offset(state_type, "gap");
    off_aio = slot_offset(state_type, "aio");
    off_tid = slot_offset(state_type, "tid");
    off_name = slot_offset(state_type, "name");
    off_parent = slot_offset(state_type, "parent");
    off_parent_ref = slot_offset(state_type, "parent_ref");
    off_ident = slot_offset(state_type, "ident");
    off_native_id = slot_offset(state_type, "native_id");
    off_daemon = slot_offset(state_type, "daemon");
    off_ts = slot_offset(state_type, "ts");
    off_thread_ref = slot_offset(state_type, "thread_ref");
    off_dropped = slot_offset(state_type, "dropped");
    off_dropped_reported = slot_offset(state_type, "dropped_reported");
    off_ended = slot_offset(state_type, "ended");
    states_ok = off_buf >= 0 && off_gap >= 0 && off_aio >= 0 && off_tid >= 0
        && off_name >= 0 && off_parent >= 0 && off_parent_ref >= 0 && off_ident >= 0
        && off_native_id >= 0 && off_daemon >= 0 && off_ts >= 0 && off_thread_ref >= 0
        && off_dropped >= 0 && off_dropped_reported >= 0 && off_ended >= 0
        && deque_type != NULL;
    Py_INCREF(d);
    Py_XSETREF(core_dict, d);
    Py_INCREF(acq);
    Py_XSETREF(op_acquire, acq);
    Py_INCREF(rel);
    Py_XSETREF(op_release, rel);
    Py_RETURN_NONE;
}

/* ---------------------------------------------------------------- helpers */

/* A dict's version tag changes with every change of that dict and is never
 * reused for another one (3.10-3.13), so (dict, tag) names one state of one
 * dict's contents: a lookup in a dict that did not change since is answered
 * from the last one.  0: no tag on this version (always look up). */
#if PY_VERSION_HEX < 0x030E0000
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static inline uint64_t
dict_version(PyObject *d)
{
    return ((PyDictObject *)d)->ma_version_tag;
}
#pragma GCC diagnostic pop
#else
static inline uint64_t dict_version(PyObject *d) { (void)d; return 0; }
#endif

/* core_dict[name] (borrowed; NULL, with an error or not), remembered in *c while
 * _core's globals are unchanged: the dict holds the value as long as its version
 * stays (a dict lookup per event was a tenth of a traced lock pair's cost; a
 * thread's binding and end looked up three more, about 350 instructions). */
typedef struct {
    uint64_t version;
    PyObject *value;  /* (borrowed from core_dict) */
} CoreCached;

static inline PyObject *
core_get(CoreCached *c, PyObject *name)
{
    uint64_t v = dict_version(core_dict);
    if (v != 0 && v == c->version)
        return c->value;
    PyObject *r = PyDict_GetItemWithError(core_dict, name);
    c->value = r;
    c->version = r != NULL ? v : 0;
    return r;
}

/* _core.ON */
static inline int
recording_on(void)
{
    static CoreCached on;
    return core_get(&on, s_ON) == Py_True;
}

/* Now on the event clock (time.monotonic_ns), as a C integer: 0 with an
 * error set when it cannot be read. */
static inline long long
now_ll(void)
{
#if defined(__linux__)
    struct timespec t;
    if (clock_gettime(CLOCK_MONOTONIC, &t) == 0)
        return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
#endif
    PyObject *o = PyObject_CallNoArgs(mono_ns_fn);
    long long v = o != NULL ? PyLong_AsLongLong(o) : -1;
    Py_XDECREF(o);
    if (v == -1 && PyErr_Occurred())
        return 0;
    return v != 0 ? v : 1;
}

static inline PyObject *
now_ns(void)
{
#if defined(__linux__)
    struct timespec t;
    if (clock_gettime(CLOCK_MONOTONIC, &t) == 0)
        return PyLong_FromLongLong((long long)t.tv_sec * 1000000000LL + t.tv_nsec);
#endif
    return PyObject_CallNoArgs(mono_ns_fn);
}

/* The truth of `v`, a new reference that is let go (NULL: a call that failed):
 * 1, 0 or -1 with an error. */
static inline int
truth_of(PyObject *v)
{
    int r = v != NULL ? PyObject_IsTrue(v) : -1;
    Py_XDECREF(v);
    return r;
}

/* Clear an error raised while recording; errors that are not Exceptions
 * (KeyboardInterrupt, SystemExit) go on, as they do in the Python version. */
static inline int
swallow(void)
{
    if (PyErr_ExceptionMatches(PyExc_Exception)) {
        PyErr_Clear();
        return 0;
    }
    return -1;
}

/* A thread the recorder started (Thread.start) is bound to its ThreadState in
 * this module's thread-locals (tl_own, below); any other keeps it in its own
 * thread-state dict (the one _thread._local uses), so the reference goes away
 * with the thread, whatever runs while it is torn down.  The dict's entry is
 * trusted while the generation it was stored at is current: Python bumps the
 * generation (invalidate()) whenever a ThreadState is bound to a thread or all
 * are forgotten, the only ways the object that _tls.st names can change, and
 * whenever the site caches are cleared (which also voids the locks' last-site
 * memos). */
static unsigned long state_generation = 1;
/* This module's thread-locals, read on every event: in the static TLS block
 * where the platform has one for a loaded library (glibc keeps room for a few
 * words), one instruction a read instead of a __tls_get_addr call, and nothing
 * allocated the first time a new thread reads them. */
#if defined(__GNUC__) && defined(__linux__)
#define LS_THREAD_LOCAL _Thread_local __attribute__((tls_model("initial-exec")))
#else
#define LS_THREAD_LOCAL _Thread_local
#endif
static LS_THREAD_LOCAL unsigned long tl_generation;
/* The last lookup in this thread's dict: while that dict (same object, same
 * version: see dict_version) is unchanged, the state it holds is the same
 * (borrowed: the dict keeps it). */
static LS_THREAD_LOCAL PyObject *tl_tdict, *tl_state;
static LS_THREAD_LOCAL uint64_t tl_tdict_version;

static PyObject *
invalidate(PyObject *mod, PyObject *Py_UNUSED(ignored))
{
    state_generation++;
    Py_RETURN_NONE;
}

/* The state thread_begin bound to this OS thread (strong), valid while
 * tl_own_epoch is state_key_epoch: a thread per request then never makes its
 * thread-state dict (made, filled and freed, a few hundred instructions a
 * thread).  thread_bootstrap_method lets it go once the thread's run ended;
 * a binding by Python (own_state) or a new key (new_state_key) replaces it. */
static unsigned long state_key_epoch = 1;
static LS_THREAD_LOCAL PyObject *tl_own;
static LS_THREAD_LOCAL unsigned long tl_own_epoch;

static inline void
drop_own(void)
{
    Py_CLEAR(tl_own);
}

/* own_state(st): `st` was just bound to the calling thread (_tls.st = st).  Only
 * this thread's entry changes, so the other threads' entries (and the locks'
 * last-site memos) stay valid: a new thread per request must not make every
 * thread look its state up again. */
static PyObject *
own_state(PyObject *mod, PyObject *st)
{
    drop_own();
    PyObject *tdict = PyThreadState_GetDict();  /* borrowed; NULL without an error */
    if (tdict == NULL || PyDict_SetItem(tdict, s_state_key, st) < 0) {
        PyErr_Clear();
        state_generation++;
        Py_RETURN_NONE;
    }
    tl_generation = state_generation;
    Py_RETURN_NONE;
}

static int lookup_attr(PyObject *obj, PyObject *name, PyObject **r);

/* The state bound to the calling thread in this recording (borrowed), or NULL
 * (no error: none; with an error: failed).  The thread-state dict holds it under
 * s_state_key, which reset_thread_local() replaces (new_state_key): the entries
 * of a past recording are never found again.  Threads bound in C have no _tls.st;
 * others (bound by Python without this dict) are looked up there. */
static PyObject *
bound_in_dict(PyObject *tdict)
{
    if (tdict != NULL && tl_generation == state_generation) {
        uint64_t v = dict_version(tdict);
        if (tdict == tl_tdict && v != 0 && v == tl_tdict_version)
            return tl_state;
    }
    if (tdict == NULL)
        return NULL;
    PyObject *st = PyDict_GetItemWithError(tdict, s_state_key);  /* borrowed */
    if (st != NULL) {
        tl_generation = state_generation;
        tl_tdict = tdict;
        tl_tdict_version = dict_version(tdict);
        tl_state = st;
    }
    return st;
}

/* The calling thread's state in this recording, as a new reference in *st: 1,
 * 0 (none bound) or -1 (an error).  One bound by Python alone (in _tls) is
 * entered in the thread-state dict as it is found. */
static int
bound_state_of(PyObject **st)
{
    if (tl_own != NULL) {
        if (tl_own_epoch == state_key_epoch) {
            *st = Py_NewRef(tl_own);
            return 1;
        }
        drop_own();  /* (bound in a past recording, or before a fork) */
    }
    PyObject *tdict = PyThreadState_GetDict();  /* borrowed; NULL without an error */
    if ((*st = bound_in_dict(tdict)) != NULL) {
        Py_INCREF(*st);
        return 1;
    }
    if (PyErr_Occurred())
        return -1;
    PyObject *tls = PyDict_GetItemWithError(core_dict, s_tls);  /* borrowed */
    if (tls == NULL)
        return PyErr_Occurred() ? -1 : 0;
    int found = lookup_attr(tls, s_st, st);
    if (found > 0 && tdict != NULL && PyDict_SetItem(tdict, s_state_key, *st) < 0)
        PyErr_Clear();
    return found;
}

/* The calling thread's ThreadState (new reference), or NULL with an error. */
static PyObject *
thread_state(void)
{
    PyObject *st;
    int found = bound_state_of(&st);
    if (found != 0)
        return found > 0 ? st : NULL;
    return PyObject_CallNoArgs(current_state_fn);
}

/* current_state(): recorder._core.current_state in C. */
static PyObject *
current_state_c(PyObject *mod, PyObject *Py_UNUSED(ignored))
{
    return thread_state();
}

/* bound_state(): the calling thread's state, or None when it has none (nothing
 * registered). */
static PyObject *
bound_state(PyObject *mod, PyObject *Py_UNUSED(ignored))
{
    PyObject *st;
    int found = bound_state_of(&st);
    if (found != 0)
        return found > 0 ? st : NULL;
    Py_RETURN_NONE;
}

static void forget_handovers(void);

/* new_state_key(): forget every thread's binding (a new recording, or a forked
 * child): the states are looked up under a new key from now on. */
static PyObject *
new_state_key(PyObject *mod, PyObject *Py_UNUSED(ignored))
{
    static unsigned long epoch;
    PyObject *key = PyUnicode_FromFormat("lockscope.recorder.state.%lu", ++epoch);
    if (key == NULL)
        return NULL;
    PyUnicode_InternInPlace(&key);
    Py_SETREF(s_state_key, key);
    state_key_epoch++;
    state_generation++;
    forget_handovers();
    Py_RETURN_NONE;
}

static inline PyObject *
state_get(PyObject *st, Py_ssize_t off, PyObject *name)
{
    if (off >= 0 && Py_TYPE(st) == state_type) {
        PyObject *v = *(PyObject **)((char *)st + off);
        if (v == NULL) {
            PyErr_SetObject(PyExc_AttributeError, name);
            return NULL;
        }
        Py_INCREF(v);
        return v;
    }
    return PyObject_GetAttr(st, name);
}

static inline int
state_set(PyObject *st, Py_ssize_t off, PyObject *name, PyObject *value)
{
    if (off >= 0 && Py_TYPE(st) == state_type) {
        PyObject **slot = (PyObject **)((char *)st + off);
        Py_INCREF(value);
        Py_XSETREF(*slot, value);
        return 0;
    }
    return PyObject_SetAttr(st, name, value);
}

/* Instruction offset of a frame, as Python's frame.f_lasti. */
static inline int
frame_lasti(PyFrameObject *f)
{
#if PY_VERSION_HEX >= 0x030B0000
    return PyFrame_GetLasti(f);
#else
    return f->f_lasti < 0 ? -1 : f->f_lasti * 2;
#endif
}

/* A cursor over the calling thread's frames, innermost first, as Python code sees
 * them (sys._getframe() and f_back):
 *   Frame f = fr_current();   the frame of the Python code that called into C
 *   f = fr_back(f);           its caller (the cursor `f` is given up)
 *   fr_code(f), fr_lasti(f)   its code object (borrowed) and f_lasti
 *   fr_keep(f) / fr_drop(f)   another cursor on the same frame / let it go
 *   fr_object(f)              the frame object (new reference; materialised)
 * A NULL cursor is the end of the stack.  Raw cursors are only valid while the C
 * function that took them runs no Python code that could return from a frame. */
#ifdef LS_RAW_FRAMES
typedef _PyInterpreterFrame *Frame;

static inline Frame
fr_complete(Frame f)
{
#if PY_VERSION_HEX >= 0x030D0000
    /* (3.13: a frame not running a code object, as the C stack's entry frames
     * whose f_executable is None, is skipped before _PyFrame_IsIncomplete reads
     * its code) */
    while (f != NULL && (!PyCode_Check(f->f_executable) || _PyFrame_IsIncomplete(f)))
#else
    while (f != NULL && _PyFrame_IsIncomplete(f))
#endif
        f = f->previous;
    return f;
}

#if PY_VERSION_HEX >= 0x030D0000
static inline Frame
fr_current(void)
{
    return fr_complete(PyThreadState_Get()->current_frame);
}

static inline PyCodeObject *fr_code(Frame f) { return _PyFrame_GetCode(f); }
#else
static inline Frame
fr_current(void)
{
    return fr_complete(PyThreadState_Get()->cframe->current_frame);
}

static inline PyCodeObject *fr_code(Frame f) { return f->f_code; }
#endif
static inline Frame fr_back(Frame f) { return fr_complete(f->previous); }
static inline Frame fr_keep(Frame f) { return f; }
static inline void fr_drop(Frame f) { (void)f; }

static inline int
fr_lasti(Frame f)
{
    int lasti = _PyInterpreterFrame_LASTI(f);
    return lasti < 0 ? -1 : lasti * (int)sizeof(_Py_CODEUNIT);
}

/* (the n-th frame from the current one, through the public API) */
static PyObject *
fr_object(Frame target)
{
    Py_ssize_t depth = 0;
    for (Frame f = fr_current(); f != NULL && f != target; f = fr_back(f))
        depth++;
    PyFrameObject *o = (PyFrameObject *)Py_XNewRef(PyEval_GetFrame());
    for (Py_ssize_t i = 0; i < depth && o != NULL; i++) {
        PyFrameObject *back = PyFrame_GetBack(o);
        Py_DECREF(o);
        o = back;
    }
    return o != NULL ? (PyObject *)o : Py_NewRef(Py_None);
}
#else
typedef PyFrameObject *Frame;  /* (an owned reference) */

static inline Frame fr_current(void) { return (Frame)Py_XNewRef(PyEval_GetFrame()); }

static inline Frame
fr_back(Frame f)
{
    Frame back = PyFrame_GetBack(f);
    Py_DECREF(f);
    return back;
}

static inline PyCodeObject *
fr_code(Frame f)
{
    PyCodeObject *code = PyFrame_GetCode(f);  /* (the frame keeps it alive) */
    Py_DECREF(code);
    return code;
}

static inline Frame fr_keep(Frame f) { return (Frame)Py_XNewRef(f); }
static inline void fr_drop(Frame f) { Py_XDECREF(f); }
static inline int fr_lasti(Frame f) { return frame_lasti(f); }
static inline PyObject *fr_object(Frame f) { return Py_NewRef(f != NULL ? (PyObject *)f : Py_None); }
#endif

/* A site memo (SiteMemo): a call site that acquired a lock (a loop, or a
 * function called again, acquires from the same instruction): the code object
 * (held, so its address cannot be reused), the instruction offset, the site id
 * and the site generation they belong to; `chain`, when the lock was acquired
 * in library code (logging's handler lock, a queue's mutex, a Future's
 * condition): the library frames' code objects in between, innermost first (a
 * tuple, held), each of which is skipped.  A traced lock's hot-path state is
 * its last site's memo. */
#define MEMO_CHAIN 12  /* library frames a memo spans at most (logging: 7) */
/* The sites a lock was acquired from before its last one, when it has had more
 * than one (allocated then: most locks are acquired from one place).  A lock
 * taken from a few places in turn (logging's handler lock from handle() and
 * flush(), a queue's mutex from put() and get() in two threads) missed the
 * single memo every time, and each miss walked the frames to the site. */
#define MEMO_MORE 3
#define MEMO_MORE_AFTER 8  /* (not for a lock used a few times: a Future's) */
typedef struct {
    PyObject *code, *sid, *chain;
    int lasti;
    unsigned long gen;
} SiteMemo;
typedef struct {
    SiteMemo m[MEMO_MORE];
    int next;  /* the one replaced next */
} MoreMemos;
typedef struct {
    PyObject_HEAD
    PyObject *lock;   /* the inner _thread lock / RLock (its methods are called
                       * unbound: bound ones would be two more GC objects a lock) */
    SiteMemo memo;    /* its last site */
    PyObject *ref;    /* its Ref (set by define()): what its events name */
    PyObject *def;    /* its _ls_def when set as an attribute (Python's define());
                       * else its Ref's, made when read (see Ref.def_ts) */
    MoreMemos *more;  /* its earlier sites, or NULL */
    unsigned char replaced;  /* times its memo was replaced, up to MEMO_MORE_AFTER */
} LockCore;

static PyTypeObject LockCore_Type;
static PyTypeObject CondHooks_Type;

/* A direct-mapped cache of what the Python caches say of a code object: its
 * code_sites entry (the by-lasti dict of a program frame, or None: a library
 * frame), whether it is the recorder's own code and whether its file is library
 * code (lib_codes).  The Python dicts are keyed by id(code): a frame walk did
 * a dict lookup per frame, and ids of code objects, all multiples of 16, collide
 * in a dict's low bits (250 instructions a lookup in the ThreadPoolExecutor
 * workload).  An entry does not keep its code object alive: the Python recorder
 * watches every code object it has cache entries for and, when one is freed,
 * calls forget_code(), which drops its entry here too before the address can be
 * reused (an entry that knows nothing yet, by_lasti NULL, is read again from the
 * Python caches at every use).  Entries are valid while site_generation is
 * (forget_sites(): the Python caches were cleared). */
#define CODE_CACHE_SIZE 4096
typedef struct {
    PyObject *code;
    PyObject *by_lasti;     /* NULL: code_sites has no entry yet */
    unsigned long gen;
    signed char recorder;   /* in recorder_codes */
    signed char lib;        /* lib_codes: 1, 0, -1 not known yet */
} CodeInfo;
static CodeInfo code_cache[CODE_CACHE_SIZE];
static unsigned long site_generation = 1;

static PyObject *
forget_sites(PyObject *mod, PyObject *Py_UNUSED(ignored))
{
    site_generation++;
    Py_RETURN_NONE;
}

static inline CodeInfo *
code_slot(const void *code)
{
    uintptr_t p = (uintptr_t)code;
    return &code_cache[((p >> 4) ^ (p >> 16)) & (CODE_CACHE_SIZE - 1)];
}

/* forget_code(id): the code object of that id is being freed. */
static PyObject *
forget_code(PyObject *mod, PyObject *key)
{
    void *p = PyLong_AsVoidPtr(key);
    if (p == NULL && PyErr_Occurred())
        return NULL;
    CodeInfo *ci = code_slot(p);
    if (ci->code == p) {
        PyObject *by = ci->by_lasti;
        ci->code = NULL;
        ci->by_lasti = NULL;
        Py_XDECREF(by);
    }
    Py_RETURN_NONE;
}

/* The code_sites entry of `code` into ci->by_lasti (when it has one yet). */
static int
code_info_sites(CodeInfo *ci, PyObject *key)
{
    PyObject *entry = PyDict_GetItemWithError(code_sites, key);  /* borrowed */
    if (entry == NULL)
        return PyErr_Occurred() ? -1 : 0;
    if (!PyTuple_Check(entry) || PyTuple_GET_SIZE(entry) != 2)
        return 0;
    PyObject *by = PyTuple_GET_ITEM(entry, 1);
    if (by != Py_None && !PyDict_Check(by))
        return 0;
    int rec = PySet_Contains(recorder_codes, key);
    if (rec < 0)
        return -1;
    ci->recorder = (signed char)rec;
    Py_XSETREF(ci->by_lasti, Py_NewRef(by));
    return 0;
}

/* The cache entry of `code` (borrowed; by_lasti NULL when the Python caches do
 * not know it yet), or NULL with an error. */
static CodeInfo *
code_info(PyCodeObject *code)
{
    CodeInfo *ci = code_slot(code);
    if (ci->code == (PyObject *)code && ci->gen == site_generation) {
        if (ci->by_lasti != NULL)
            return ci;
    }
    else {
        PyObject *old_by = ci->by_lasti;
        ci->code = (PyObject *)code;
        ci->by_lasti = NULL;
        ci->gen = site_generation;
        ci->recorder = 0;
        ci->lib = -1;
        Py_XDECREF(old_by);  /* (a dict of ints: frees nothing that runs code) */
    }
    PyObject *key = PyLong_FromVoidPtr(code);
    if (key == NULL)
        return NULL;
    int rc = code_info_sites(ci, key);
    Py_DECREF(key);
    return rc < 0 ? NULL : ci;
}

/* Whether `ci`'s file is library code: 1, 0, or -1 when not known yet (the
 * Python user_site() fills lib_codes), -2 on error. */
static int
code_info_lib(CodeInfo *ci)
{
    if (ci->lib >= 0)
        return ci->lib;
    PyObject *key = PyLong_FromVoidPtr(ci->code);
    if (key == NULL)
        return -2;
    PyObject *lib = PyDict_GetItemWithError(lib_codes, key);  /* borrowed */
    Py_DECREF(key);
    if (lib == NULL)
        return PyErr_Occurred() ? -2 : -1;
    ci->lib = lib == Py_True;
    return ci->lib;
}

/* The site id of the code running in frame `f` (the cursor is taken over) or,
 * when that is a library frame, of its first caller outside the libraries (new
 * reference to an int): from the lock's last-site memo (`lc`, when given), else
 * the site cache; 0 when every frame down to the bottom of the stack is a known
 * library frame (a pool's worker thread running library code).  NULL without an
 * error when the cache does not know it yet: the caller then asks the Python
 * recorder. */
static void untrack_if_tracked(PyObject *o);

/* Whether memo `m` names the site of frame `f` (the cursor is kept): the same
 * library code objects, then the same code and instruction. */
static int
memo_matches(Frame f, const SiteMemo *m)
{
    Frame g = fr_keep(f);
    Py_ssize_t k = m->chain != NULL ? PyTuple_GET_SIZE(m->chain) : 0;
    int ok = 1;
    for (Py_ssize_t i = 0; i < k && ok; i++) {
        ok = g != NULL && (PyObject *)fr_code(g) == PyTuple_GET_ITEM(m->chain, i);
        if (ok)
            g = fr_back(g);
    }
    if (m->code == Py_None)  /* (the chain ends at the bottom of the stack) */
        ok = ok && g == NULL;
    else
        ok = ok && g != NULL && (PyObject *)fr_code(g) == m->code && fr_lasti(g) == m->lasti;
    fr_drop(g);
    return ok;
}

/* Whether memo `m` holds a site of the current site generation. */
static inline int
memo_valid(const SiteMemo *m)
{
    return m->sid != NULL && m->gen == state_generation;
}

/* The site of one of the lock's earlier memos that frame `f` matches (borrowed),
 * or NULL. */
static PyObject *
more_memo_site(Frame f, MoreMemos *more)
{
    for (int i = 0; i < MEMO_MORE; i++) {
        SiteMemo *m = &more->m[i];
        if (memo_valid(m) && memo_matches(f, m))
            return m->sid;
    }
    return NULL;
}

/* Set memo `m` to (code, lasti, chain) -> sid, valid now (the references are
 * taken over; the ones it held are let go). */
static void
memo_set(SiteMemo *m, PyObject *code, int lasti, PyObject *chain, PyObject *sid)
{
    PyObject *old[3] = {m->code, m->sid, m->chain};
    m->code = code;
    m->sid = sid;
    m->chain = chain;
    m->lasti = lasti;
    m->gen = state_generation;
    for (int i = 0; i < 3; i++)  /* (ints, code objects, tuples of them) */
        Py_XDECREF(old[i]);
}

/* Remember the site `sid` of (code, lasti, chain) as the lock's last one (the
 * references are taken over); the last one before it, still valid, goes to its
 * earlier memos. */
static void
memo_remember(LockCore *lc, PyObject *code, int lasti, PyObject *chain, PyObject *sid)
{
    SiteMemo *last = &lc->memo;
    if (memo_valid(last) && (lc->more != NULL || ++lc->replaced >= MEMO_MORE_AFTER)) {
        if (lc->more == NULL)
            lc->more = PyMem_Calloc(1, sizeof(MoreMemos));
        if (lc->more != NULL) {
            SiteMemo *m = &lc->more->m[lc->more->next];
            lc->more->next = (lc->more->next + 1) % MEMO_MORE;
            memo_set(m, last->code, last->lasti, last->chain, last->sid);
            last->code = last->sid = last->chain = NULL;
        }
    }
    memo_set(last, code, lasti, chain, sid);
}

/* Let memo `m`'s references go. */
static void
memo_clear(SiteMemo *m)
{
    Py_CLEAR(m->code);
    Py_CLEAR(m->sid);
    Py_CLEAR(m->chain);
}

static int
memo_traverse(SiteMemo *m, visitproc visit, void *arg)
{
    Py_VISIT(m->code);
    Py_VISIT(m->sid);
    Py_VISIT(m->chain);
    return 0;
}

/* Drop the lock's earlier memos. */
static void
more_memos_free(LockCore *lc)
{
    MoreMemos *more = lc->more;
    lc->more = NULL;
    if (more == NULL)
        return;
    for (int i = 0; i < MEMO_MORE; i++)
        memo_clear(&more->m[i]);
    PyMem_Free(more);
}

static unsigned long long site_memo_hits, site_table_hits, site_walks;  /* (see site_stats) */

static PyObject *
site_stats(PyObject *mod, PyObject *Py_UNUSED(ignored))
{
    return Py_BuildValue("KKK", site_memo_hits, site_table_hits, site_walks);
}

static int gsite_one_set = 0;  /* (tests: every path hashes alike; see gsite_set) */

static PyObject *
gsite_one_set_py(PyObject *mod, PyObject *flag)
{
    gsite_one_set = PyObject_IsTrue(flag) == 1;
    Py_RETURN_NONE;
}

/* The sites found last by frame walks, by the code and instruction of the two
 * innermost frames (one is often shared: Condition.__enter__ is where a
 * Future's lock is taken from each of its methods): a lock made per item (a
 * Future's) or a place with no lock (Thread.start) has no memo of its own that
 * a walk's result could go to, and each acquire walked the frames again,
 * looking each code object up.  An entry is exactly as a lock's memo (and
 * checked the same way).  Two entries per hash value, the newer first: with one,
 * two paths a program takes in turn that hashed alike (a pool job's Future is
 * taken from set_result() and result(); code addresses decide) evicted each
 * other, and each took a walk every time. */
#define GSITE_SETS 512
static SiteMemo gsites[GSITE_SETS][2];

static inline uintptr_t
frame_hash(Frame f)
{
    uintptr_t p = (uintptr_t)fr_code(f);
    return (p >> 4) ^ (p >> 14) ^ ((uintptr_t)(unsigned)fr_lasti(f) * 40503u);
}

/* The pair of entries for frame `f` (and its caller). */
static SiteMemo *
gsite_set(Frame f)
{
    if (gsite_one_set)
        return gsites[0];
    uintptr_t h = frame_hash(f);
    Frame up = fr_back(fr_keep(f));
    if (up != NULL)
        h = h * 31u + frame_hash(up);
    fr_drop(up);
    return gsites[h & (GSITE_SETS - 1)];
}

/* The entry of pair `g` that frame `f` matches, or NULL. */
static SiteMemo *
gsite_match(Frame f, SiteMemo *g)
{
    for (int i = 0; i < 2; i++)
        if (memo_valid(&g[i]) && memo_matches(f, &g[i]))
            return &g[i];
    return NULL;
}

/* Remember a walk's result in pair `g` (the references are taken over): in an
 * entry that is free (or stale), else in the first, the one there moving to the
 * second (the older one is dropped). */
static void
gsite_remember(SiteMemo *g, PyObject *code, int lasti, PyObject *chain, PyObject *sid)
{
    if (memo_valid(&g[0]) && memo_valid(&g[1])) {
        memo_clear(&g[1]);
        g[1] = g[0];  /* (its references move with it) */
        g[0].code = g[0].sid = g[0].chain = NULL;
    }
    memo_set(memo_valid(&g[0]) ? &g[1] : &g[0], code, lasti, chain, sid);
}

/* The site of frame `f` (new reference) when the walk from it found `sid` at
 * `code`, `lasti` (code Py_None: the bottom of the stack) through the library
 * frames `chain[0..nchain)`: remembered by the lock (if any) and globally. */
static PyObject *
site_found(LockCore *lc, SiteMemo *g, PyObject *code, int lasti, PyObject *const *chain,
           int nchain, PyObject *sid)
{
    if (nchain <= MEMO_CHAIN) {
        PyObject *tup = NULL;
        if (nchain > 0 && (tup = PyTuple_New(nchain)) != NULL) {
            for (int i = 0; i < nchain; i++)
                PyTuple_SET_ITEM(tup, i, Py_NewRef(chain[i]));
            untrack_if_tracked(tup);  /* (code objects only: no cycle) */
        }
        if (nchain == 0 || tup != NULL) {
            if (lc != NULL)
                memo_remember(lc, Py_NewRef(code), lasti, Py_XNewRef(tup), Py_NewRef(sid));
            if (g != NULL)
                gsite_remember(g, Py_NewRef(code), lasti, Py_XNewRef(tup), Py_NewRef(sid));
            Py_XDECREF(tup);
        }
        else {
            PyErr_Clear();
        }
    }
    return sid;
}

static PyObject *
cached_site(Frame f, LockCore *lc)
{
    if (lc != NULL && f != NULL && memo_valid(&lc->memo)) {
        SiteMemo *m = &lc->memo;
        int hit = m->chain == NULL  /* (the common case, inline: the caller is the site) */
            ? (PyObject *)fr_code(f) == m->code && fr_lasti(f) == m->lasti
            : memo_matches(f, m);
        PyObject *sid = hit ? m->sid : lc->more != NULL ? more_memo_site(f, lc->more) : NULL;
        if (sid != NULL) {
            site_memo_hits++;
            fr_drop(f);
            return Py_NewRef(sid);
        }
    }
    SiteMemo *g = f != NULL ? gsite_set(f) : NULL;
    SiteMemo *hit = g != NULL ? gsite_match(f, g) : NULL;
    if (hit != NULL) {
        site_table_hits++;
        fr_drop(f);
        /* (and the lock's memo: it may only be stale, thread states having been
         * forgotten since, and the global entry is the dearer one to check) */
        if (lc != NULL)
            memo_remember(lc, Py_NewRef(hit->code), hit->lasti, Py_XNewRef(hit->chain),
                          Py_NewRef(hit->sid));
        return Py_NewRef(hit->sid);
    }
    site_walks++;
    PyObject *chain[MEMO_CHAIN];  /* (borrowed: the frames keep them alive) */
    int nchain = 0;
    while (f != NULL) {
        PyCodeObject *code = fr_code(f);
        int lasti = fr_lasti(f);
        CodeInfo *ci = code_info(code);
        if (ci == NULL || ci->by_lasti == NULL)
            break;
        PyObject *by_lasti = ci->by_lasti;
        if (by_lasti == Py_None) {  /* a library frame: its caller is the site */
            if (nchain <= MEMO_CHAIN) {
                if (nchain < MEMO_CHAIN)
                    chain[nchain] = (PyObject *)code;
                nchain++;
            }
            f = fr_back(f);
            continue;
        }
        PyObject *li = PyLong_FromLong(lasti);
        if (li == NULL)
            break;
        PyObject *sid = PyDict_GetItemWithError(by_lasti, li);  /* borrowed */
        Py_DECREF(li);
        if (sid == NULL)
            break;
        /* Remember it, with the library frames in between (a site reached
         * through them depends on each being the same code again). */
        Py_INCREF(sid);
        site_found(lc, g, (PyObject *)code, lasti, chain, nchain, sid);
        fr_drop(f);
        return sid;
    }
    if (f == NULL)  /* library frames down to the bottom of the stack: no site */
        return site_found(lc, g, Py_None, -1, chain, nchain, Py_NewRef(int_zero));
    fr_drop(f);
    return NULL;
}

/* The site id of the calling code (new reference to an int): from the lock's
 * last-site memo, else the site cache, else through the Python site_id(1),
 * which interns it and fills the cache. */
static PyObject *
caller_site(LockCore *lc)
{
    PyObject *sid = cached_site(fr_current(), lc);
    if (sid != NULL || PyErr_Occurred())
        return sid;
    /* Not cached yet: the Python path walks, interns and fills the cache.  From
     * inside site_id, frame 1 is the code that called this C function. */
    return PyObject_CallOneArg(site_id_fn, int_one);
}

/* site_id(depth=2): recorder._core.site_id in C (same result): the site of the
 * first frame outside the libraries, starting `depth` frames up as seen from a
 * Python site_id (the Python frame that calls this is that function's frame 1).
 * Never raises an Exception: 0 when there is no such frame. */
static PyObject *
site_id_c(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    long depth = 2;
    if (nargs > 1) {
        PyErr_SetString(PyExc_TypeError, "site_id(depth=2)");
        return NULL;
    }
    if (nargs == 1) {
        depth = PyLong_AsLong(args[0]);
        if (depth == -1 && PyErr_Occurred())
            return swallow() < 0 ? NULL : PyLong_FromLong(0);
    }
    Frame f = fr_current();
    for (long i = 1; i < depth && f != NULL; i++)
        f = fr_back(f);
    /* (depth 0 or less names the Python site_id's own frame, a library one: the
     * same as 1) */
    if (f == NULL)  /* no frame that deep: as the Python version */
        return PyLong_FromLong(0);
    Frame start = fr_keep(f);
    PyObject *sid = cached_site(f, NULL);
    if (sid == NULL && !PyErr_Occurred()) {
        PyObject *frame = fr_object(start);
        if (frame != NULL) {
            sid = PyObject_CallOneArg(site_from_fn, frame);
            Py_DECREF(frame);
        }
    }
    fr_drop(start);
    if (sid == NULL && swallow() == 0)
        sid = PyLong_FromLong(0);
    return sid;
}

/* -------------------------------------------------------------------- Ev */

/* One buffered event: (ts, op, obj, site, task) or that and `extra`, read by
 * Python code as the tuple it stands for (len, indexing, slicing, unpacking,
 * comparison).  Not a tuple because every tuple counts as an allocation for the
 * cyclic GC's thresholds until it is freed, tracked or not: a million buffered
 * events made the program's collections several times more frequent, and full
 * collections as many times more (ThreadPoolExecutor.map, 30k jobs: 9 full
 * collections over 2.0 M objects in all, against 4 over 0.8 M bare).  An Ev is
 * not a GC object at all; like the untracked tuples before it, it refers to
 * ints, strings, Refs, thread states, tasks and dicts of plain fields. */
typedef struct {
    PyObject_HEAD
    Py_ssize_t n;
    long long ts;       /* the time stamp while item[0] is NULL (made on demand) */
    PyObject *item[6];
} Ev;

static PyTypeObject Ev_Type;

#include "_ev_slabs.c"

static inline Ev *
ev_alloc(void)
{
    Ev *e = ev_slab_alloc();
    if (e == NULL)
        return (Ev *)PyErr_NoMemory();
    return (Ev *)PyObject_Init((PyObject *)e, &Ev_Type);
}

static PyObject *
ev_new(Py_ssize_t n, PyObject *const *items)
{
    Ev *e = ev_alloc();
    if (e == NULL)
        return NULL;
    e->n = n;
    e->ts = 0;
    for (Py_ssize_t i = 0; i < n; i++)
        e->item[i] = Py_NewRef(items[i]);
    return (PyObject *)e;
}

/* An event stamped `ts` (items[0] is not read): the int is made only if Python
 * code reads it; the encoder writes the C value. */
static PyObject *
ev_new_ns(Py_ssize_t n, long long ts, PyObject *const *items)
{
    Ev *e = ev_alloc();
    if (e == NULL)
        return NULL;
    e->n = n;
    e->ts = ts;
    /* (0 marks "not kept in C" for the encoder: a stamp of 0 is kept as the int) */
    e->item[0] = ts != 0 ? NULL : Py_NewRef(int_zero);
    for (Py_ssize_t i = 1; i < n; i++)
        e->item[i] = Py_NewRef(items[i]);
    return (PyObject *)e;
}

/* e's item i (borrowed), its time stamp made now if it was not; NULL with an
 * error when that fails. */
static PyObject *
ev_get(Ev *e, Py_ssize_t i)
{
    if (i == 0 && e->item[0] == NULL)
        e->item[0] = PyLong_FromLongLong(e->ts);
    return e->item[i];
}

static PyObject *
Ev_tp_new(PyTypeObject *tp, PyObject *args, PyObject *kw)
{
    Py_ssize_t n = PyTuple_GET_SIZE(args);
    if (kw != NULL || (n != 5 && n != 6)) {
        PyErr_SetString(PyExc_TypeError, "Ev(ts, op, obj, site, task[, extra])");
        return NULL;
    }
    return ev_new(n, &PyTuple_GET_ITEM(args, 0));
}

static void let_go_of_state(PyObject *st);

static void
Ev_dealloc(Ev *e)
{
    PyObject *obj = e->item[2];
    if (Py_TYPE(obj) == state_type) {  /* (a thread's start or end: perhaps its last) */
        e->item[2] = NULL;
        let_go_of_state(obj);
    }
    for (Py_ssize_t i = 0; i < e->n; i++)
        Py_XDECREF(e->item[i]);
    ev_slab_free(e);  /* (Ev_Type has no subtypes) */
}

static PyObject *
ev_as_tuple(Ev *e)
{
    PyObject *t = PyTuple_New(e->n);
    if (t == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < e->n; i++) {
        PyObject *v = ev_get(e, i);
        if (v == NULL) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, i, Py_NewRef(v));
    }
    return t;
}

static Py_ssize_t
Ev_length(Ev *e)
{
    return e->n;
}

static PyObject *
Ev_item(Ev *e, Py_ssize_t i)
{
    if (i < 0 || i >= e->n) {
        PyErr_SetString(PyExc_IndexError, "event index out of range");
        return NULL;
    }
    return Py_XNewRef(ev_get(e, i));
}

static PyObject *
Ev_subscript(Ev *e, PyObject *key)
{
    if (PyLong_Check(key)) {
        Py_ssize_t i = PyLong_AsSsize_t(key);
        if (i == -1 && PyErr_Occurred())
            return NULL;
        return Ev_item(e, i < 0 ? i + e->n : i);
    }
    PyObject *t = ev_as_tuple(e);
    if (t == NULL)
        return NULL;
    PyObject *r = PyObject_GetItem(t, key);
    Py_DECREF(t);
    return r;
}

static PyObject *
Ev_richcompare(Ev *e, PyObject *other, int op)
{
    PyObject *a = ev_as_tuple(e);
    if (a == NULL)
        return NULL;
    PyObject *b = Py_TYPE(other) == &Ev_Type ? ev_as_tuple((Ev *)other) : Py_NewRef(other);
    if (b == NULL) {
        Py_DECREF(a);
        return NULL;
    }
    PyObject *r = PyTuple_Check(b) ? PyObject_RichCompare(a, b, op) : Py_NewRef(Py_NotImplemented);
    Py_DECREF(a);
    Py_DECREF(b);
    return r;
}

static PyObject *
Ev_repr(Ev *e)
{
    PyObject *t = ev_as_tuple(e);
    if (t == NULL)
        return NULL;
    PyObject *r = PyUnicode_FromFormat("Ev%R", t);
    Py_DECREF(t);
    return r;
}

static PySequenceMethods Ev_as_sequence = {
    .sq_length = (lenfunc)Ev_length,
    .sq_item = (ssizeargfunc)Ev_item,
};

static PyMappingMethods Ev_as_mapping = {
    .mp_length = (lenfunc)Ev_length,
    .mp_subscript = (binaryfunc)Ev_subscript,
};

static PyTypeObject Ev_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "recorder._speedups.Ev",
    .tp_basicsize = sizeof(Ev),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Ev(ts, op, obj, site, task[, extra]): a buffered event, read as that tuple.",
    .tp_dealloc = (destructor)Ev_dealloc,
    .tp_repr = (reprfunc)Ev_repr,
    .tp_as_sequence = &Ev_as_sequence,
    .tp_as_mapping = &Ev_as_mapping,
    .tp_richcompare = (richcmpfunc)Ev_richcompare,
    .tp_hash = PyObject_HashNotImplemented,
    .tp_new = Ev_tp_new,
};

/* ------------------------------------------------------------------- Ref */

/* What an event names instead of the traced object itself: its id, its
 * definition record (the object's own _ls_def dict, shared) and the Refs of the
 * objects that definition names (_ls_deps).  Events used to hold the object, so
 * every lock, condition and future named by a buffered event lived until the
 * writer took it, was promoted to the old generations of the cyclic GC and made
 * full collections frequent and long (ThreadPoolExecutor.map of 30k jobs: 300k
 * objects kept, 0.4-0.5 s of full collections).  A Ref is not tracked by the
 * cyclic GC: it refers only to a definition dict (of ids and strings) and to
 * other Refs, so it can be part of no cycle.  The writer and the summary read a
 * Ref exactly as they read the object (_ls_id, _ls_deps, _ls_record()). */
#define DEF_LAZY_KW 3  /* keyword fields a lazy definition keeps (a queue's condition: 3) */
typedef struct {
    PyObject_HEAD
    PyObject *id;
    PyObject *def;
    PyObject *deps;
    char of_lockcore;  /* the Ref of a traced Lock/RLock (summary mode's filter counts those) */
    /* (summary mode's filter, of a Lock/RLock: its class and whether it has its
     * own histograms (1) or its class's (0), as worked out in filter generation
     * sf_gen (0: never); see sf_class_of) */
    signed char sf_own;
    uint32_t sf_gen;
    uint64_t sf_cls;
    /* A definition made from a prototype (define_c): the text of the fields it
     * shares with it (see def_text), and the version of `def` then; the writer
     * copies that text while `def` is unchanged. */
    PyObject *text;
    uint64_t def_version;
    /* A traced Lock, RLock or Condition defined in C has a lazy definition (def
     * NULL, text set; see ref_lazy): what it does not share with its prototype
     * is kept here, and the dict is made only when something reads it
     * (ref_def).  The dict and its time stamp were 300 of the 530 bytes a traced
     * lock added, and 1.3k of the 4.6k instructions its creation did. */
    long long def_ts;
    PyObject *def_th;                   /* its thread's id */
    PyObject *def_kw[DEF_LAZY_KW];      /* its keyword fields' values (text's kwnames) */
    PyObject *def_owner;                /* "owner", added by a Condition made over it */
} Ref;

static inline int
ref_lazy(const Ref *r)
{
    return r->def == NULL && r->text != NULL;
}

static Ref *cond_ref(PyObject *self);

static PyTypeObject Ref_Type;

static PyObject *
Ref_new(PyTypeObject *tp, PyObject *args, PyObject *kw)
{
    PyObject *id, *def;
    if (!PyArg_ParseTuple(args, "OO!:Ref", &id, &PyDict_Type, &def))
        return NULL;
    Ref *r = (Ref *)tp->tp_alloc(tp, 0);
    if (r == NULL)
        return NULL;
    r->id = Py_NewRef(id);
    r->def = Py_NewRef(def);
    r->of_lockcore = 0;
    return (PyObject *)r;
}

static void
Ref_dealloc(Ref *r)
{
    Py_XDECREF(r->id);
    Py_XDECREF(r->def);
    Py_XDECREF(r->deps);
    Py_XDECREF(r->text);
    Py_XDECREF(r->def_th);
    for (int i = 0; i < DEF_LAZY_KW; i++)
        Py_XDECREF(r->def_kw[i]);
    Py_XDECREF(r->def_owner);
    Py_TYPE(r)->tp_free((PyObject *)r);
}

static PyObject *ref_def(Ref *r);

static PyObject *
Ref_record(Ref *r, PyObject *Py_UNUSED(ignored))
{
    return Py_XNewRef(ref_def(r));
}

static PyObject *
Ref_get_def(Ref *r, void *Py_UNUSED(closure))
{
    PyObject *d = ref_def(r);
    if (d == NULL && !PyErr_Occurred())
        PyErr_SetString(PyExc_AttributeError, "_ls_def");
    return Py_XNewRef(d);
}

static int
Ref_set_deps(Ref *r, PyObject *value, void *Py_UNUSED(closure))
{
    if (value != NULL && !PyTuple_CheckExact(value)) {
        PyErr_SetString(PyExc_TypeError, "_ls_deps must be a tuple of Refs");
        return -1;
    }
    /* Refs only: anything else could close a cycle the GC cannot see. */
    for (Py_ssize_t i = 0; value != NULL && i < PyTuple_GET_SIZE(value); i++) {
        if (Py_TYPE(PyTuple_GET_ITEM(value, i)) != &Ref_Type) {
            PyErr_SetString(PyExc_TypeError, "_ls_deps must be a tuple of Refs");
            return -1;
        }
    }
    Py_XSETREF(r->deps, Py_XNewRef(value));
    return 0;
}

static PyObject *
Ref_get_deps(Ref *r, void *Py_UNUSED(closure))
{
    if (r->deps == NULL) {
        PyErr_SetString(PyExc_AttributeError, "_ls_deps");
        return NULL;
    }
    return Py_NewRef(r->deps);
}

static PyObject *
Ref_repr(Ref *r)
{
    return PyUnicode_FromFormat("<lockscope Ref #%S>", r->id);
}

static PyMethodDef Ref_methods[] = {
    {"_ls_record", (PyCFunction)Ref_record, METH_NOARGS, "The definition record."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef Ref_members[] = {
    {"_ls_id", T_OBJECT_EX, offsetof(Ref, id), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef Ref_getset[] = {
    {"_ls_def", (getter)Ref_get_def, NULL, NULL, NULL},
    {"_ls_deps", (getter)Ref_get_deps, (setter)Ref_set_deps, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject Ref_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "recorder._speedups.Ref",
    .tp_basicsize = sizeof(Ref),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Ref(id, definition): what events name instead of a traced object.",
    .tp_dealloc = (destructor)Ref_dealloc,
    .tp_repr = (reprfunc)Ref_repr,
    .tp_methods = Ref_methods,
    .tp_members = Ref_members,
    .tp_getset = Ref_getset,
    .tp_new = Ref_new,
};

static PyObject *s_ls_ref;

/* getattr(obj, name, None) as 1 (found, new reference in *r), 0 or -1. */
static int
lookup_attr(PyObject *obj, PyObject *name, PyObject **r)
{
#if PY_VERSION_HEX >= 0x030D0000
    return PyObject_GetOptionalAttr(obj, name, r);
#else
    return _PyObject_LookupAttr(obj, name, r);
#endif
}

/* What an event names for `obj` (new reference): its Ref when define() gave it
 * one, else the object itself (threads, tasks, jobs, objects made while the C
 * accelerator was not loaded). */
static PyObject *
event_obj(PyObject *obj)
{
    if (Py_TYPE(obj) == state_type || Py_TYPE(obj) == &Ref_Type)
        return Py_NewRef(obj);
    PyObject *r = NULL;
    int found = lookup_attr(obj, s_ls_ref, &r);
    if (found < 0)
        PyErr_Clear();
    if (found <= 0 || r == NULL || Py_TYPE(r) != &Ref_Type) {
        Py_XDECREF(r);
        return Py_NewRef(obj);
    }
    return r;
}

/* ------------------------------------------------------------ definitions */

static PyObject *s_tid, *s_ls_def, *s_k, *s_id, *s_type, *s_site, *s_ts, *s_th;
static PyObject *s_expr, *s_lib, *s_user_site;

/* The entry of `key` in the by-lasti dict `by_lasti` (borrowed), or NULL (no
 * error set when simply absent). */
static inline PyObject *
by_lasti_get(PyObject *by_lasti, int lasti);

/* The values define_walk found lately in the site and name caches (dicts keyed
 * by an int: a lasti, an id(code)), by dict, key and the dict's version: a
 * definition looked up four of them each time (an int made for each key; 1k
 * instructions a definition).  A value is borrowed from its dict, which holds
 * it while its version is unchanged; a version is never reused, so an entry of
 * a dict that went cannot match another dict made at its address. */
#define DICT_MEMO 256
static struct { PyObject *dict; uint64_t version; uintptr_t key; PyObject *value; }
    dict_memo[DICT_MEMO];

/* d[key] (borrowed; NULL: not there, or an error), d a dict keyed by ints. */
static PyObject *
int_dict_get(PyObject *d, uintptr_t key, int is_ptr)
{
    if (!PyDict_Check(d))
        return NULL;
    uint64_t v = dict_version(d);
    size_t i = (((uintptr_t)d >> 4) ^ key ^ (key >> 7)) & (DICT_MEMO - 1);
    if (v != 0 && dict_memo[i].dict == d && dict_memo[i].key == key && dict_memo[i].version == v)
        return dict_memo[i].value;
    PyObject *k = is_ptr ? PyLong_FromVoidPtr((void *)key) : PyLong_FromLong((long)(intptr_t)key);
    if (k == NULL)
        return NULL;
    PyObject *value = PyDict_GetItemWithError(d, k);
    Py_DECREF(k);
    if (value != NULL && v != 0) {
        dict_memo[i].dict = d;
        dict_memo[i].version = v;
        dict_memo[i].key = key;
        dict_memo[i].value = value;
    }
    return value;
}

static PyObject *
by_lasti_get(PyObject *by_lasti, int lasti)
{
    return int_dict_get(by_lasti, (uintptr_t)(intptr_t)lasti, 0);
}

/* What recorder._core.define() works out from the stack, from the caches only:
 * the site (new reference, or NULL: none), the creation line's (expr, lib)
 * (new reference, or NULL: no maker) and, when lib is set, the user site (new
 * reference).  Returns 0, or 1 when a cache does not know a frame yet (the
 * Python define() then walks, and fills the caches for the next time), -1 on
 * error.  The cursor `f` is taken over. */
static int
define_walk(Frame f, PyObject **site, PyObject **info, PyObject **user)
{
    Frame maker = NULL;
    void *maker_code = NULL;
    int maker_lasti = 0, rc = 1;
    *site = *info = *user = NULL;
    while (f != NULL) {
        CodeInfo *ci = code_info(fr_code(f));
        if (ci == NULL)
            goto error;
        if (ci->by_lasti == NULL)
            goto slow;
        int lasti = fr_lasti(f);
        if (maker == NULL && !ci->recorder) {
            maker = fr_keep(f);
            maker_code = ci->code;
            maker_lasti = lasti;
        }
        PyObject *by_lasti = ci->by_lasti;
        if (by_lasti != Py_None) {
            PyObject *sid = by_lasti_get(by_lasti, lasti);
            if (sid == NULL)
                goto slow;
            *site = Py_NewRef(sid);
            break;
        }
        f = fr_back(f);
    }
    fr_drop(f);
    f = NULL;
    if (maker == NULL)
        return 0;
    PyObject *names = int_dict_get(names_by_code, (uintptr_t)maker_code, 1);  /* borrowed */
    PyObject *inf = names != NULL ? by_lasti_get(names, maker_lasti) : NULL;
    if (inf == NULL || !PyTuple_Check(inf) || PyTuple_GET_SIZE(inf) != 2)
        goto slow;
    if (PyTuple_GET_ITEM(inf, 1) != Py_None) {
        /* A library made it: the first frame of the program's own code above */
        Frame g = fr_back(fr_keep(maker));
        PyObject *us = NULL;
        while (g != NULL) {
            CodeInfo *ci = code_info(fr_code(g));
            int lib = ci != NULL ? code_info_lib(ci) : -2;
            if (lib == -2) {
                fr_drop(g);
                goto error;
            }
            if (lib == 0) {
                if (ci->by_lasti == NULL) {
                    fr_drop(g);
                    goto slow;
                }
                PyObject *by_lasti = ci->by_lasti;
                if (by_lasti != Py_None) {
                    us = by_lasti_get(by_lasti, fr_lasti(g));
                    if (us == NULL) {
                        fr_drop(g);
                        goto slow;
                    }
                    Py_INCREF(us);
                }
                fr_drop(g);
                break;
            }
            if (lib != 1) {  /* not known yet */
                fr_drop(g);
                goto slow;
            }
            g = fr_back(g);
        }
        *user = us;  /* (NULL: none) */
    }
    *info = Py_NewRef(inf);
    rc = 0;
    goto done;
slow:
    rc = PyErr_Occurred() ? -1 : 1;
    goto done;
error:
    rc = -1;
done:
    if (rc != 0) {
        Py_CLEAR(*site);
        Py_CLEAR(*user);
    }
    fr_drop(f);
    fr_drop(maker);
    return rc;
}

/* define(obj, kind, type_, depth=3, **fields): recorder._core.define in C for a
 * creation whose frames the caches know (the common case: a site seen before);
 * anything else goes to the Python define(), which is the reference.  Builds the
 * same definition record, key for key and in the same order. */
static unsigned long long defined_fast, defined_slow;  /* (see define_stats) */

/* The traced lock types whose instances can be part of no reference cycle
 * (set_plain_lock_types): slots only, holding the inner lock, its bound
 * methods, ints, a Ref and a definition of plain fields. */
static PyObject *plain_lock_types;

static void
untrack_if_tracked(PyObject *o)
{
    if (o != NULL && PyObject_IS_GC(o) && PyObject_GC_IsTracked(o))
        PyObject_GC_UnTrack(o);
}

/* Hide a traced lock from the cyclic GC: its inner lock always (it refers to
 * nothing but its type), and the traced lock itself when it is of a plain type.
 * A traced Lock was four GC objects where the original is one; a pool creating
 * a Future (a Condition and its RLock) per job paid for them in full
 * collections, which walk every tracked object.  (The bound acquire/release it
 * keeps stay tracked: their dealloc unlinks them from the GC's list unchecked.)
 * Both deallocs untrack through PyObject_GC_UnTrack, which checks. */
static void
untrack_lock(LockCore *lc)
{
    untrack_if_tracked(lc->lock);
    if (plain_lock_types != NULL) {
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(plain_lock_types); i++) {
            if ((PyObject *)Py_TYPE(lc) == PyTuple_GET_ITEM(plain_lock_types, i)) {
                untrack_if_tracked((PyObject *)lc);
                break;
            }
        }
    }
}

static PyObject *
set_plain_lock_types(PyObject *mod, PyObject *types)
{
    if (!PyTuple_Check(types)) {
        PyErr_SetString(PyExc_TypeError, "set_plain_lock_types(tuple of types)");
        return NULL;
    }
    Py_XSETREF(plain_lock_types, Py_NewRef(types));
    Py_RETURN_NONE;
}

/* Give `obj` its Ref (see Ref), with the text its definition `rec` shares with
 * its prototype (NULL: none): 0, or -1 on an error that is not an Exception (an
 * object that cannot carry one has its events name it directly). */
/* A new Ref of `oid`, every other field empty: NULL with an error. */
static Ref *
ref_new(PyObject *oid)
{
    Ref *r = PyObject_New(Ref, &Ref_Type);
    if (r == NULL)
        return NULL;
    r->id = Py_NewRef(oid);
    r->def = r->deps = r->text = r->def_th = r->def_owner = NULL;
    memset(r->def_kw, 0, sizeof(r->def_kw));
    r->of_lockcore = 0;
    r->sf_gen = 0;
    r->def_version = 0;
    r->def_ts = 0;
    return r;
}

/* Give `obj` its Ref `r` (stolen): a traced lock keeps it in C, any other
 * object as its _ls_ref.  0, or -1 with an error. */
static int
ref_attach(PyObject *obj, Ref *r)
{
    if (PyObject_TypeCheck(obj, &LockCore_Type)) {
        r->of_lockcore = 1;
        Py_XSETREF(((LockCore *)obj)->ref, (PyObject *)r);
        untrack_lock((LockCore *)obj);
        return 0;
    }
    int rc = PyObject_SetAttr(obj, s_ls_ref, (PyObject *)r);
    Py_DECREF(r);
    return rc;
}

static int
attach_ref_text(PyObject *obj, PyObject *oid, PyObject *rec, PyObject *text)
{
    Ref *r = ref_new(oid);
    if (r == NULL)
        return swallow();
    r->def = Py_NewRef(rec);
    r->text = Py_XNewRef(text);
    r->def_version = text != NULL ? dict_version(rec) : 0;
    return ref_attach(obj, r) < 0 ? swallow() : 0;
}

static int
attach_ref(PyObject *obj, PyObject *oid, PyObject *rec)
{
    return attach_ref_text(obj, oid, rec, NULL);
}

/* Give `obj` (a traced lock or Condition) the Ref of a lazy definition
 * (ref_lazy): made from the prototype that `text` belongs to, with its id, time
 * stamp, thread and keyword fields' values (at most DEF_LAZY_KW, atomic).  0, or
 * -1 with an error. */
static int
attach_lazy_ref(PyObject *obj, PyObject *oid, PyObject *text, long long ts, PyObject *th,
                PyObject *const *kw, Py_ssize_t nkw)
{
    Ref *r = ref_new(oid);
    if (r == NULL)
        return -1;
    r->text = Py_NewRef(text);
    r->def_ts = ts;
    r->def_th = Py_NewRef(th);
    for (Py_ssize_t i = 0; i < nkw && i < DEF_LAZY_KW; i++)
        r->def_kw[i] = Py_NewRef(kw[i]);
    return ref_attach(obj, r);
}

/* untrack_ints(s) -> s: an empty set the writer fills with ints only (the ids and
 * sites it has written) hidden from the cyclic GC, which walked it, a set as big
 * as a trace part's definitions, in each full collection of a program that
 * makes a primitive per request.  Ints can close no cycle; a set is never tracked
 * again once untracked. */
static PyObject *
untrack_ints(PyObject *mod, PyObject *s)
{
    if (!PySet_CheckExact(s) || PySet_GET_SIZE(s) != 0) {
        PyErr_SetString(PyExc_TypeError, "untrack_ints(an empty set)");
        return NULL;
    }
    if (PyObject_GC_IsTracked(s))
        PyObject_GC_UnTrack(s);
    return Py_NewRef(s);
}

static PyObject *
attach_ref_py(PyObject *mod, PyObject *args)
{
    PyObject *obj, *oid, *rec;
    if (!PyArg_ParseTuple(args, "OOO!", &obj, &oid, &PyDict_Type, &rec))
        return NULL;
    if (attach_ref(obj, oid, rec) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
define_stats(PyObject *mod, PyObject *Py_UNUSED(ignored))
{
    return Py_BuildValue("KK", defined_fast, defined_slow);
}

static unsigned long long def_protos_made;

static PyObject *
definition_prototypes(PyObject *mod, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromUnsignedLongLong(def_protos_made);
}

/* The keyword fields of a definition are all str, int, None or bool. */
static int
atomic_fields(PyObject *const *values, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *v = values[i];
        if (!(v == Py_None || PyBool_Check(v) || PyLong_CheckExact(v) || PyUnicode_CheckExact(v)))
            return 0;
    }
    return 1;
}

/* A definition's dict, copied from a template with its keys (values None).
 * Built field by field, a definition took a general-keys table presized for 16
 * fields: 568 bytes, more than all else a traced Lock adds.  A copy of a dict
 * made by inserting str keys has str-only keys sized to them (208 bytes for a
 * Lock's 8 fields) and costs no resize.  The keys a definition has depend on its
 * keyword names (a constant tuple of its caller) and on whether it names an
 * expression and a library: one template for each such shape. */
#define DEF_SHAPES 32
static struct { PyObject *kwnames, *tmpl; int flags; } def_shapes[DEF_SHAPES];
static int def_nshapes;

/* The template of the shape (new reference). */
static PyObject *
def_template(PyObject *kwnames, int flags)
{
    for (int i = 0; i < def_nshapes; i++)
        if (def_shapes[i].kwnames == kwnames && def_shapes[i].flags == flags)
            return Py_NewRef(def_shapes[i].tmpl);
    PyObject *t = PyDict_New();
    PyObject *base[7] = {s_k, s_id, s_type, s_name, s_site, s_ts, s_th};
    int bad = t == NULL;
    for (int i = 0; !bad && i < 7; i++)
        bad = PyDict_SetItem(t, base[i], Py_None) < 0;
    Py_ssize_t nkw = kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t i = 0; !bad && i < nkw; i++)
        bad = PyDict_SetItem(t, PyTuple_GET_ITEM(kwnames, i), Py_None) < 0;
    if (!bad && (flags & 1))
        bad = PyDict_SetItem(t, s_expr, Py_None) < 0;
    if (!bad && (flags & 2))
        bad = PyDict_SetItem(t, s_lib, Py_None) < 0 || PyDict_SetItem(t, s_user_site, Py_None) < 0;
    if (bad) {
        Py_XDECREF(t);
        return NULL;
    }
    if (def_nshapes < DEF_SHAPES) {  /* (the recorder's callers have a few shapes) */
        def_shapes[def_nshapes].kwnames = Py_XNewRef(kwnames);
        def_shapes[def_nshapes].flags = flags;
        def_shapes[def_nshapes].tmpl = Py_NewRef(t);
        def_nshapes++;
    }
    return t;
}

/* A definition dict of the shape, its values None (new reference). */
static PyObject *
new_definition(PyObject *kwnames, int flags)
{
    PyObject *t = def_template(kwnames, flags);
    PyObject *rec = t != NULL ? PyDict_Copy(t) : NULL;
    Py_XDECREF(t);
    return rec;
}

/* A definition made again at one place (a Future's Condition and RLock, a lock
 * per item) has every field of the last one made there but its id, time stamp,
 * thread and keyword fields: a prototype per place, shape, kind and type holds
 * them filled in, and a new definition is its copy with those set (3 + the
 * keyword fields instead of 10 + them: 1.4k instructions less for each).  The
 * place is the site, the (expr, lib) pair and the user site define_walk found,
 * compared by address: the cache holds them, so an address stays that object's
 * (the site caches of a new recording make new ones).  The kind and type are
 * compared as strs (a queue's condition has its type made for it).  Sets of 8,
 * the last used first: two places whose prototypes fell in one slot of a
 * direct-mapped table, used in turn, replaced each other every time. */
#define DEF_PROTO_WAYS 8
#define DEF_PROTOS (32 * DEF_PROTO_WAYS)
typedef struct {
    PyObject *kwnames, *kind, *type, *site, *info, *user, *proto;
    PyObject *text;  /* see def_text */
} DefProto;
static DefProto def_protos[DEF_PROTOS];

static Py_ssize_t plain_len(PyObject *s);

/* An int of 64 bits or None, as JSON (into buf, 24 bytes): 0, or -1 (neither). */
static int
json_int_or_null(PyObject *v, char *buf)
{
    if (v == Py_None) {
        strcpy(buf, "null");
        return 0;
    }
    if (!PyLong_CheckExact(v))
        return -1;
    int overflow;
    long long n = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (overflow || (n == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        return -1;
    }
    snprintf(buf, 24, "%lld", n);
    return 0;
}

/* The text a prototype's definitions share, as the writer writes them (out_extra
 * of the dict): (A, B, C, site, user_site, nkw, ntail, prototype, kwnames), where
 * a definition is A ,"id":id B ,"ts":ts ,"th":th <its nkw keyword fields> C
 * <fields added since> }\n, C being its ntail fields after the keyword ones (the
 * prototype and keyword names: what a lazy definition is made of, ref_def); or
 * None when a shared field is not plain (the writer then writes each field, as
 * for any). */
static PyObject *
def_text(PyObject *kind, PyObject *type, PyObject *site, PyObject *expr, PyObject *lib,
         PyObject *user, PyObject *proto, PyObject *kwnames)
{
    Py_ssize_t nkw = kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0;
    char site_s[24], user_s[24];
    if (plain_len(kind) < 0 || plain_len(type) < 0
            || (expr != Py_None && plain_len(expr) < 0)
            || (lib != Py_None && plain_len(lib) < 0)
            || json_int_or_null(site, site_s) < 0 || json_int_or_null(user, user_s) < 0)
        return Py_NewRef(Py_None);
    PyObject *a = PyBytes_FromFormat("{\"k\":\"%s\"", PyUnicode_AsUTF8(kind));
    PyObject *b = PyBytes_FromFormat(",\"type\":\"%s\",\"name\":null,\"site\":%s",
                                     PyUnicode_AsUTF8(type), site_s);
    PyObject *e = expr != Py_None
        ? PyBytes_FromFormat(",\"expr\":\"%s\"", PyUnicode_AsUTF8(expr))
        : PyBytes_FromString("");
    PyObject *l = lib != Py_None
        ? PyBytes_FromFormat(",\"lib\":\"%s\",\"user_site\":%s", PyUnicode_AsUTF8(lib), user_s)
        : PyBytes_FromString("");
    PyObject *text = NULL;
    if (a != NULL && b != NULL && e != NULL && l != NULL) {
        PyBytes_Concat(&e, l);  /* (steals nothing of l: e becomes e + l, or NULL) */
        if (e != NULL)
            text = Py_BuildValue("(OOOOOnnOO)", a, b, e, site, user, nkw,
                                 (Py_ssize_t)((expr != Py_None) + 2 * (lib != Py_None)),
                                 proto, kwnames != NULL ? kwnames : Py_None);
    }
    Py_XDECREF(a);
    Py_XDECREF(b);
    Py_XDECREF(e);
    Py_XDECREF(l);
    return text;
}

static inline int
same_str(PyObject *a, PyObject *b)
{
    return a == b || (PyUnicode_CheckExact(a) && PyUnicode_CheckExact(b)
                      && PyUnicode_Compare(a, b) == 0);
}

/* The prototype of a definition (new reference), made at the first call; *text:
 * its def_text (new reference). */
static PyObject *
def_prototype(PyObject *kwnames, PyObject *kind, PyObject *type, PyObject *site,
              PyObject *info, PyObject *user, PyObject **text)
{
    Py_hash_t th = PyUnicode_CheckExact(type) ? PyObject_Hash(type) : (Py_hash_t)(uintptr_t)type;
    if (th == -1)
        return NULL;
    uintptr_t h = ((uintptr_t)kwnames ^ (uintptr_t)kind * 3 ^ (uintptr_t)site * 7
                   ^ (uintptr_t)info * 11 ^ (uintptr_t)user * 13) >> 4;
    DefProto *set = &def_protos[((h ^ (uintptr_t)th) % (DEF_PROTOS / DEF_PROTO_WAYS))
                                * DEF_PROTO_WAYS];
    for (int k = 0; k < DEF_PROTO_WAYS && set[k].proto != NULL; k++) {
        DefProto *d = &set[k];
        if (d->kwnames == kwnames && d->site == site && d->info == info && d->user == user
                && same_str(d->kind, kind) && same_str(d->type, type)) {
            DefProto hit = *d;  /* (to the front: the last used first) */
            memmove(set + 1, set, (size_t)k * sizeof(DefProto));
            set[0] = hit;
            *text = Py_NewRef(hit.text);
            return Py_NewRef(hit.proto);
        }
    }
    PyObject *expr = info != NULL ? PyTuple_GET_ITEM(info, 0) : Py_None;
    PyObject *lib = info != NULL ? PyTuple_GET_ITEM(info, 1) : Py_None;
    PyObject *site_v = site != NULL && PyObject_IsTrue(site) == 1 ? site : Py_None;
    PyObject *user_v = user != NULL && PyObject_IsTrue(user) == 1 ? user : Py_None;
    PyObject *proto = new_definition(kwnames, (expr != Py_None) | (lib != Py_None) << 1);
    int bad = proto == NULL
        || PyDict_SetItem(proto, s_k, kind) < 0
        || PyDict_SetItem(proto, s_type, type) < 0
        || PyDict_SetItem(proto, s_site, site_v) < 0
        || (expr != Py_None && PyDict_SetItem(proto, s_expr, expr) < 0)
        || (lib != Py_None
            && (PyDict_SetItem(proto, s_lib, lib) < 0
                || PyDict_SetItem(proto, s_user_site, user_v) < 0));
    *text = bad ? NULL : def_text(kind, type, site_v, expr, lib, lib != Py_None ? user_v : Py_None,
                                  proto, kwnames);
    if (bad || *text == NULL) {
        Py_XDECREF(proto);
        Py_CLEAR(*text);
        return NULL;
    }
    def_protos_made++;
    DefProto old = set[DEF_PROTO_WAYS - 1];  /* (the least lately used goes) */
    memmove(set + 1, set, (DEF_PROTO_WAYS - 1) * sizeof(DefProto));
    DefProto *d = &set[0];
    *d = (DefProto){Py_XNewRef(kwnames), Py_NewRef(kind), Py_NewRef(type), Py_XNewRef(site),
                    Py_XNewRef(info), Py_XNewRef(user), Py_NewRef(proto), Py_NewRef(*text)};
    PyObject *gone[8] = {old.kwnames, old.kind, old.type, old.site, old.info, old.user,
                         old.proto, old.text};
    for (int i = 0; i < 8; i++)  /* (last: strs, ints, tuples and a dict of them) */
        Py_XDECREF(gone[i]);
    return proto;
}

static PyObject *
define_c(PyObject *mod, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *site = NULL, *info = NULL, *user = NULL, *st = NULL, *oid = NULL, *rec = NULL;
    if (nargs < 3 || nargs > 4 || core_dict == NULL || py_define_fn == NULL)
        goto slow;
    if (!recording_on()) {
        if (PyErr_Occurred())
            return NULL;
        goto slow;
    }
    long depth = 3;
    if (nargs == 4) {
        depth = PyLong_AsLong(args[3]);
        if (depth == -1 && PyErr_Occurred())
            return NULL;
    }
    /* Python's define() starts at its _getframe(depth - 1): our caller's frame
     * is its 1, as C functions have no frame of their own. */
    Frame f = fr_current();
    for (long i = 0; i < depth - 2 && f != NULL; i++)
        f = fr_back(f);
    int walked = define_walk(f, &site, &info, &user);
    if (walked != 0) {
        if (walked < 0 && swallow() < 0)
            return NULL;
        goto slow;
    }
    oid = new_id();
    if (oid == NULL || PyObject_SetAttr(args[0], s_ls_id, oid) < 0)
        goto error;
    st = thread_state();
    if (st == NULL)
        goto error;
    PyObject *tid = state_get(st, off_tid, s_tid);
    if (tid == NULL)
        goto error;
    Py_SETREF(st, tid);
    long long now = now_ll();
    if (now == 0)
        goto error;
    Py_ssize_t nkw = kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0;
    PyObject *text = NULL;
    PyObject *proto = def_prototype(kwnames, args[1], args[2], site, info, user, &text);
    if (proto != NULL && text != Py_None && nkw <= DEF_LAZY_KW && atomic_fields(args + nargs, nkw)
            && (PyObject_TypeCheck(args[0], &LockCore_Type)
                || PyObject_TypeCheck(args[0], &CondHooks_Type))) {
        /* A traced Lock, RLock or Condition: its definition stays lazy (Ref.def_ts) */
        Py_DECREF(proto);
        int failed = attach_lazy_ref(args[0], oid, text, now, st, args + nargs, nkw) < 0;
        Py_DECREF(text);
        if (failed)
            goto error;
        goto done;
    }
    rec = proto != NULL ? PyDict_Copy(proto) : NULL;
    Py_XDECREF(proto);
    PyObject *ts = rec != NULL ? PyLong_FromLongLong(now) : NULL;
    int bad = ts == NULL
        || PyDict_SetItem(rec, s_id, oid) < 0
        || PyDict_SetItem(rec, s_ts, ts) < 0
        || PyDict_SetItem(rec, s_th, st) < 0;
    Py_XDECREF(ts);
    for (Py_ssize_t i = 0; !bad && i < nkw; i++)
        bad = PyDict_SetItem(rec, PyTuple_GET_ITEM(kwnames, i), args[nargs + i]) < 0;
    if (bad) {
        Py_XDECREF(text);
        goto error;
    }
    if (atomic_fields(args + nargs, nkw))
        /* Strs, ints, None and bools only: it can be part of no cycle, and the GC
         * would walk it (a definition a primitive) until a full collection
         * untracks it.  A later non-atomic value tracks it again (dict insert). */
        PyObject_GC_UnTrack(rec);
    /* (the Ref first: a traced Condition's _ls_def is its Ref's) */
    int failed = attach_ref_text(args[0], oid, rec, text != Py_None ? text : NULL) < 0
        || (!PyObject_TypeCheck(args[0], &CondHooks_Type)
            && PyObject_SetAttr(args[0], s_ls_def, rec) < 0);
    Py_XDECREF(text);
    if (failed)
        goto error;
    Py_DECREF(rec);
done:
    Py_XDECREF(site);
    Py_XDECREF(info);
    Py_XDECREF(user);
    Py_XDECREF(st);
    Py_DECREF(oid);
    defined_fast++;
    Py_RETURN_NONE;
error:
    Py_XDECREF(rec);
    Py_XDECREF(site);
    Py_XDECREF(info);
    Py_XDECREF(user);
    Py_XDECREF(st);
    Py_XDECREF(oid);
    return NULL;
slow:
    defined_slow++;
    return PyObject_Vectorcall(py_define_fn, args, nargs, kwnames);
}

/* What the constructors below need of recorder/_threading.py
 * (set_lock_creators): its file name; id(code) of the library constructors
 * whose primitives name an owner (Event, Barrier, Queue), with the owner's type;
 * Event.__init__ and Thread.__init__'s code (a Thread's own _started Event is
 * not traced). */
static PyObject *threading_file, *owner_codes, *event_init_code, *thread_init_code;
/* (owner_codes: id(code) of an owner constructor -> the owner's type) */
static PyObject *s_kind_lock, *s_kind_resource, *s_type_condition, *s_owner, *s_ls_deps;

/* r's definition dict (borrowed): made now, as define_c would have made it, when
 * it is lazy; NULL when it has none (or with an error). */
static PyObject *
ref_def(Ref *r)
{
    if (!ref_lazy(r))
        return r->def;
    PyObject *t = r->text;  /* (see def_text) */
    PyObject *kwnames = PyTuple_GET_ITEM(t, 8);
    PyObject *rec = PyDict_Copy(PyTuple_GET_ITEM(t, 7));
    PyObject *ts = rec != NULL ? PyLong_FromLongLong(r->def_ts) : NULL;
    int bad = ts == NULL
        || PyDict_SetItem(rec, s_id, r->id) < 0
        || PyDict_SetItem(rec, s_ts, ts) < 0
        || PyDict_SetItem(rec, s_th, r->def_th) < 0;
    Py_XDECREF(ts);
    Py_ssize_t nkw = kwnames != Py_None ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t i = 0; !bad && i < nkw && i < DEF_LAZY_KW; i++)
        bad = PyDict_SetItem(rec, PyTuple_GET_ITEM(kwnames, i), r->def_kw[i]) < 0;
    if (!bad && r->def_owner != NULL)
        bad = PyDict_SetItem(rec, s_owner, r->def_owner) < 0;
    if (bad) {
        Py_XDECREF(rec);
        return NULL;
    }
    untrack_if_tracked(rec);  /* (as define_c: plain fields only) */
    r->def = rec;
    r->def_version = dict_version(rec);  /* (its text still is what the writer copies) */
    return rec;
}
static PyObject *kw_reentrant, *kw_lock, *int_three;
static PyObject *kw_lock_owner, *kw_lock_owner_role, *int_four, *s_ls_nconds, *s_self;
static PyObject *queue_roles[3];  /* a queue's conditions in the order it makes them */
static PyObject *queue_prefix, *kw_reentrant_owner;

static PyObject *
set_lock_creators(PyObject *mod, PyObject *args)
{
    PyObject *file, *codes, *event_init, *thread_init;
    if (!PyArg_ParseTuple(args, "UO!OO", &file, &PyDict_Type, &codes, &event_init,
                          &thread_init))
        return NULL;
    Py_XSETREF(threading_file, Py_NewRef(file));
    Py_XSETREF(owner_codes, Py_NewRef(codes));
    Py_XSETREF(event_init_code, Py_NewRef(event_init));
    Py_XSETREF(thread_init_code, Py_NewRef(thread_init));
    Py_RETURN_NONE;
}

/* The frame of the code that called the constructor calling us, past
 * recorder/_threading.py's own frames (a cursor to drop; NULL at the end).
 * `from_c`: the constructor is C (CondHooks, LockCore.rlock_init), with no frame
 * of its own: the current frame is its caller's; else it is the Python
 * constructor's. */
static Frame
creator_frame(int from_c)
{
    Frame f = fr_current();
    if (f != NULL && !from_c)
        f = fr_back(f);
    while (f != NULL) {
        PyObject *file = fr_code(f)->co_filename;
        if (file != threading_file
                && (!PyUnicode_Check(file)
                    || PyUnicode_GET_LENGTH(file) != PyUnicode_GET_LENGTH(threading_file)
                    || PyUnicode_Compare(file, threading_file) != 0))
            break;
        f = fr_back(f);
    }
    return f;
}

static int
creators_ready(void)
{
    if (threading_file == NULL || core_dict == NULL || !recording_on())
        return PyErr_Occurred() ? swallow() : 0;
    return 1;
}

/* in_thread_internals() -> bool: the primitive being made (from a Python
 * constructor) is for a Thread's own _started Event, whose handshake is
 * recorded as start/end/join instead (_threading._inside_thread_internals). */
static int
thread_internals_make(int from_c)
{
    if (threading_file == NULL)
        return 0;
    Frame f = creator_frame(from_c);
    int inside = 0;
    if (f != NULL && (PyObject *)fr_code(f) == event_init_code) {
        f = fr_back(f);
        inside = f != NULL && (PyObject *)fr_code(f) == thread_init_code;
    }
    fr_drop(f);
    return inside;
}

static PyObject *
in_thread_internals(PyObject *mod, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(thread_internals_make(0));
}

/* The owner (new reference) of a library constructor's frame `f`: its `self`,
 * or NULL (none found: not an error) where frames are not read raw. */
static PyObject *
frame_self(Frame f)
{
#ifdef LS_RAW_FRAMES
    PyCodeObject *code = fr_code(f);
    if (code->co_argcount < 1 || PyTuple_GET_SIZE(code->co_localsplusnames) < 1
            || PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(code->co_localsplusnames, 0),
                                                "self") != 0)
        return NULL;
    return Py_XNewRef(_PyFrame_GetLocalsArray(f)[0]);
#elif PY_VERSION_HEX >= 0x030C0000
    PyObject *self = PyFrame_GetVar(f, s_self);
    if (self == NULL)
        PyErr_Clear();
    return self;
#else
    (void)f;
    return NULL;
#endif
}

/* Who the primitive being made belongs to (_threading._owner_of), from the
 * creator frame: 0 when no owner constructor (Event, Barrier, Queue) made it; 1
 * with *owner, *otype (the owner constructor's type name) and *oid (given one if
 * it had none) as new references; 2 when one did but its owner is not found here
 * (the Python path decides); -1 on error. */
static int
creator_owner(PyObject **owner, PyObject **otype, PyObject **oid, int from_c)
{
    *owner = *otype = *oid = NULL;
    Frame f = creator_frame(from_c);
    if (f == NULL)
        return 0;
    PyObject *key = PyLong_FromVoidPtr(fr_code(f));
    PyObject *t = key != NULL ? PyDict_GetItemWithError(owner_codes, key) : NULL;  /* (borrowed) */
    Py_XDECREF(key);
    if (t != NULL && PyUnicode_Check(t))
        *owner = frame_self(f);
    fr_drop(f);
    if (PyErr_Occurred())
        goto error;
    if (t == NULL)
        return 0;
    if (*owner == NULL)
        return 2;
    *otype = Py_NewRef(t);
    if (lookup_attr(*owner, s_ls_id, oid) < 0)
        goto error;
    if (*oid == NULL && ((*oid = new_id()) == NULL
                         || PyObject_SetAttr(*owner, s_ls_id, *oid) < 0))
        goto error;
    return 1;
error:
    Py_CLEAR(*owner);
    Py_CLEAR(*otype);
    Py_CLEAR(*oid);
    return -1;
}

/* A condition a library constructor makes for its owner (an Event's, a Barrier's,
 * a queue's three; creator_owner's owner, otype and oid): _threading.Condition.
 * __init__'s owner path in C.  Its definition names the owner and (a queue's) its
 * role, with the site, expr and lib of the line that called the constructor
 * (_renamed: define()'s depth one frame further).  None, or NULL. */
static PyObject *
define_owned_condition(PyObject *mod, PyObject *cond, PyObject *lock_id, PyObject *owner,
                       PyObject *otype, PyObject *oid, int from_c)
{
    PyObject *role = NULL, *r = NULL;
    Py_INCREF(otype);
    if (PyUnicode_CompareWithASCIIString(otype, "queue.Queue") == 0) {
        /* a queue of the queue module is named by its own class (LifoQueue...) */
        PyObject *module = PyObject_GetAttrString((PyObject *)Py_TYPE(owner), "__module__");
        if (module == NULL)
            goto done;
        int in_queue = PyUnicode_Check(module) && PyUnicode_CompareWithASCIIString(module, "queue") == 0;
        Py_DECREF(module);
        if (in_queue) {
            Py_SETREF(otype, PyUnicode_FromFormat("queue.%s", _PyType_Name(Py_TYPE(owner))));
            if (otype == NULL)
                goto done;
        }
    }
    if (PyUnicode_Tailmatch(otype, queue_prefix, 0, 6, -1) == 1) {
        /* (a queue's conditions, in the order its __init__ makes them) */
        PyObject *n = NULL;
        if (lookup_attr(owner, s_ls_nconds, &n) < 0)
            goto done;
        long k = n != NULL ? PyLong_AsLong(n) : 0;
        Py_XDECREF(n);
        if (k == -1 && PyErr_Occurred())
            goto done;
        PyObject *next = PyLong_FromLong(k + 1);
        if (next == NULL || PyObject_SetAttr(owner, s_ls_nconds, next) < 0) {
            Py_XDECREF(next);
            goto done;
        }
        Py_DECREF(next);
        if (k >= 0 && k < 3)
            role = Py_NewRef(queue_roles[k]);
    }
    /* define(cond, "resource", otype, 4, lock=, owner=[, role=]) (3 from C: no frame) */
    PyObject *dargs[7] = {cond, s_kind_resource, otype, from_c ? int_three : int_four, lock_id,
                          oid, role};
    r = define_c(mod, dargs, 4, role != NULL ? kw_lock_owner_role : kw_lock_owner);
done:
    Py_XDECREF(otype);
    Py_XDECREF(role);
    return r;
}

/* init_lock(lock, inner, type, reentrant) -> bool: a traced Lock/RLock's
 * initialisation, called from its Python constructor: the inner lock set, and
 * the lock defined as _LockBase._ls_define(type, reentrant) does.  False, with
 * the inner lock set, when the Python _ls_define must do it: the recording is
 * off, or the creator is a library constructor whose lock names an owner. */
static PyObject *
init_lock_impl(PyObject *mod, PyObject *lock, PyObject *inner, PyObject *type,
               PyObject *reentrant, int from_c)
{
    Py_XSETREF(((LockCore *)lock)->lock, Py_NewRef(inner));
    int ready = creators_ready();
    if (ready <= 0)
        return ready < 0 ? NULL : Py_NewRef(Py_False);
    PyObject *owner, *otype, *oid;
    int owned = creator_owner(&owner, &otype, &oid, from_c);
    if (owned < 0 || owned == 2)
        return owned < 0 ? NULL : Py_NewRef(Py_False);
    /* define(lock, "lock", type, 3, reentrant=...[, owner=]): 3 is the creator,
     * seen from the constructor that called us (an owner's: _ls_define's owner
     * path); 2 from a C constructor, which has no frame */
    PyObject *dargs[6] = {lock, s_kind_lock, type, from_c ? int_two : int_three, reentrant, oid};
    PyObject *r = define_c(mod, dargs, 4, owned ? kw_reentrant_owner : kw_reentrant);
    Py_XDECREF(owner);
    Py_XDECREF(otype);
    Py_XDECREF(oid);
    if (r == NULL)
        return NULL;
    Py_DECREF(r);
    Py_RETURN_TRUE;
}

static PyObject *
init_lock(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4 || !PyObject_TypeCheck(args[0], &LockCore_Type)) {
        PyErr_SetString(PyExc_TypeError, "init_lock(lock, inner, type, reentrant)");
        return NULL;
    }
    return init_lock_impl(mod, args[0], args[1], args[2], args[3], 0);
}

/* init_condition(cond, lock, own_lock) -> bool: what the traced Condition's
 * __init__ does after the original's, for a condition no library constructor
 * owns (Future's, a program's own): its definition naming its lock (written
 * after the lock's: _ls_deps), and its own RLock's naming it as owner.  False
 * when the Python path must do it (an owner, recording off, an untraced lock). */
static PyObject *
init_condition_impl(PyObject *mod, PyObject *cond, PyObject *lock, PyObject *own_lock,
                    int from_c)
{
    if (!PyObject_TypeCheck(lock, &LockCore_Type) || ((LockCore *)lock)->ref == NULL)
        Py_RETURN_FALSE;
    int ready = creators_ready();
    if (ready <= 0)
        return ready < 0 ? NULL : Py_NewRef(Py_False);
    Ref *lock_ref = (Ref *)((LockCore *)lock)->ref;
    PyObject *r, *owner, *otype, *oid;
    int owned = creator_owner(&owner, &otype, &oid, from_c);
    if (owned < 0 || owned == 2)
        return owned < 0 ? NULL : Py_NewRef(Py_False);
    if (owned) {
        /* (no owner constructor makes its own RLock: the Python path does that) */
        r = own_lock == Py_True ? Py_NewRef(Py_False)
            : define_owned_condition(mod, cond, lock_ref->id, owner, otype, oid, from_c);
        Py_DECREF(owner);
        Py_DECREF(otype);
        Py_DECREF(oid);
        if (r == NULL || r == Py_False)
            return r;
    }
    else {
        PyObject *dargs[5] = {cond, s_kind_resource, s_type_condition,
                              from_c ? int_two : int_three, lock_ref->id};
        r = define_c(mod, dargs, 4, kw_lock);
        if (r == NULL)
            return NULL;
    }
    Py_DECREF(r);
    PyObject *deps = PyTuple_Pack(1, lock);
    if (deps == NULL || PyObject_SetAttr(cond, s_ls_deps, deps) < 0) {
        Py_XDECREF(deps);
        return NULL;
    }
    if (!PyObject_GC_IsTracked(lock))  /* (a tuple of a lock hidden from the GC: as it) */
        PyObject_GC_UnTrack(deps);
    Py_DECREF(deps);
    PyObject *ref = NULL;
    int found = lookup_attr(cond, s_ls_ref, &ref);
    if (found < 0)
        return NULL;
    if (found && Py_TYPE(ref) == &Ref_Type) {
        PyObject *ref_deps = PyTuple_Pack(1, (PyObject *)lock_ref);
        if (ref_deps == NULL) {
            Py_DECREF(ref);
            return NULL;
        }
        Py_XSETREF(((Ref *)ref)->deps, ref_deps);
    }
    Py_XDECREF(ref);
    if (own_lock == Py_True && plain_lock_types != NULL
            && PyTuple_GET_SIZE(plain_lock_types) > 1
            && (PyObject *)Py_TYPE(lock) == PyTuple_GET_ITEM(plain_lock_types, 1)) {
        /* (its own RLock: the definition the lock's Ref holds) */
        PyObject *cond_id = PyObject_GetAttr(cond, s_ls_id);
        if (cond_id == NULL)
            return NULL;
        if (ref_lazy(lock_ref)) {
            Py_XSETREF(lock_ref->def_owner, cond_id);
            Py_RETURN_TRUE;
        }
        /* (a field added at the end: the writer still copies its prototype's text) */
        int as_made = lock_ref->text != NULL && lock_ref->def_version != 0
            && dict_version(lock_ref->def) == lock_ref->def_version
            && PyDict_GetItemWithError(lock_ref->def, s_owner) == NULL && !PyErr_Occurred();
        int rc = PyDict_SetItem(lock_ref->def, s_owner, cond_id);
        Py_DECREF(cond_id);
        if (rc < 0)
            return NULL;
        if (as_made)
            lock_ref->def_version = dict_version(lock_ref->def);
    }
    Py_RETURN_TRUE;
}

static PyObject *
init_condition(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "init_condition(cond, lock, own_lock)");
        return NULL;
    }
    return init_condition_impl(mod, args[0], args[1], args[2], 0);
}

/* Empty buffers of threads that ended, for new threads (see spare_buffer): a
 * thread per request made a deque and freed it each (about 550 instructions). */
static Pool spare_buffers = POOL(256, 2048);

/* An empty event buffer (new reference): a deque the cyclic GC does not scan (see
 * recorder/_core.py new_buffer()), kept or made now; or NULL with an error. */
static PyObject *
new_state_buffer(void)
{
    PyObject *kept = pool_take(&spare_buffers);
    if (kept != NULL)
        return kept;
    /* (deque(): its __new__ makes an empty unbounded deque, which __init__ without
     * arguments leaves as it is) */
    PyObject *buf = ((PyTypeObject *)deque_type)->tp_new((PyTypeObject *)deque_type,
                                                         empty_args, NULL);
    if (buf != NULL)
        untrack_if_tracked(buf);
    return buf;
}

/* The event buffer of `st` (new reference), made now if it has none yet: a state
 * made for a new thread gets it at its first buffered event (in summary mode most
 * request threads have none: a deque made and freed for nothing each).  NULL with
 * an error.  (Made only in C, holding the GIL throughout; Python makes one only for
 * its own thread: ThreadState.buf.) */
static PyObject *
state_buffer(PyObject *st)
{
    PyObject *buf = state_get(st, off_buf, s_buf);
    if (buf != Py_None || Py_TYPE(st) != state_type || deque_type == NULL)
        return buf;
    Py_DECREF(buf);
    buf = new_state_buffer();
    if (buf != NULL && state_set(st, off_buf, s_buf, buf) < 0)
        Py_CLEAR(buf);
    return buf;
}

/* The writer drops `st`, a thread's state that ended with nothing buffered: its
 * buffer is kept for a new thread when nothing else holds it (the state is read
 * no more: an ended state is never appended to). */
static inline PyObject *slot(PyObject *st, Py_ssize_t off);
static inline void slot_set(PyObject *st, Py_ssize_t off, PyObject *value);
static int states_ready(void);

static void
spare_buffer(PyObject *st)
{
    if (!states_ready() || Py_TYPE(st) != state_type)
        return;
    PyObject *buf = slot(st, off_buf);
    if (buf == NULL || Py_REFCNT(buf) != 1 || Py_TYPE(buf) != (PyTypeObject *)deque_type
            || PyObject_Size(buf) != 0 || !pool_keep(&spare_buffers, buf))
        return;
    Py_INCREF(buf);  /* (the pool's reference) */
    slot_set(st, off_buf, Py_None);
}

/* Whether a state (of state_type, configured) has weak references: its
 * __weakref__ slot, or on 3.12+, where the list is kept before the object (and
 * tp_weaklistoffset is not an offset to read), as weakref.getweakrefcount says:
 * 1 when that cannot be told. */
static int
has_weakrefs(PyObject *st)
{
    Py_ssize_t weak = state_type->tp_weaklistoffset;
    if (weak > 0)
        return slot(st, weak) != NULL;
    if (weakref_count_fn == NULL)
        return 1;
    PyObject *type, *value, *tb;  /* (freed while an error is set, perhaps) */
    PyErr_Fetch(&type, &value, &tb);
    PyObject *n = PyObject_CallOneArg(weakref_count_fn, st);
    int some = n != int_zero;
    Py_XDECREF(n);
    PyErr_Clear();
    PyErr_Restore(type, value, tb);
    return some;
}

/* Drop a reference to `st`.  The last reference to a thread's state that nothing
 * refers to even weakly keeps the object, its slots emptied, for the state of a
 * new thread (new_thread_state): a thread per request allocated one and freed it
 * each.  Nothing can tell it from a new object, as nothing holds the old one. */
static void
let_go_of_state(PyObject *st)
{
    if (Py_REFCNT(st) != 1 || !states_ready() || Py_TYPE(st) != state_type
            || !pool_has_room(&spare_states) || has_weakrefs(st)) {
        Py_DECREF(st);
        return;
    }
    const Py_ssize_t offs[] = {off_tid, off_buf, off_gap, off_dropped, off_dropped_reported,
                               off_name, off_parent, off_parent_ref, off_ident,
                               off_native_id, off_daemon, off_ts, off_thread_ref, off_aio,
                               off_ended};
    for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++)
        Py_CLEAR(*(PyObject **)((char *)st + offs[i]));
    /* (emptying its slots may have run code: the state is still only ours) */
    if (Py_REFCNT(st) != 1 || Py_TYPE(st) != state_type || !pool_keep(&spare_states, st))
        Py_DECREF(st);
}

/* The buffer of `st` (new reference in *buf) when the budget has room for one
 * more event: returns 0 (and, when the thread was losing events, first puts the
 * resync event that closes its gap).  Returns 1 when there is no room (nothing
 * is counted yet: see lose()), -1 on error.  A state whose buffer is not made yet
 * is its own *buf: buf_append makes the buffer when an event goes into it (in
 * summary mode, most request threads never buffer one). */
static int
buffer_room_slow(PyObject *st, PyObject **buf)
{
    *buf = state_get(st, off_buf, s_buf);
    if (*buf == NULL)
        return -1;
    if (*buf == Py_None)
        Py_SETREF(*buf, Py_NewRef(st));
    if (buffered_total >= buffer_budget) {
        Py_ssize_t n = Py_TYPE(*buf) == state_type ? 0 : PyObject_Size(*buf);
        if (n < 0)
            goto error;
        if (n >= min_thread_cap) {
            Py_CLEAR(*buf);
            return 1;
        }
    }
    PyObject *gap = state_get(st, off_gap, s_gap);
    if (gap == NULL)
        goto error;
    int in_gap = gap != Py_None;
    Py_DECREF(gap);
    if (in_gap) {
        PyObject *ev = PyObject_CallOneArg(end_gap_fn, st);
        if (ev == NULL)
            goto error;
        PyObject *res = buf_append(*buf, ev);
        Py_DECREF(ev);
        if (res == NULL)
            goto error;
        Py_DECREF(res);
        buffered_total++;
    }
    return 0;
error:
    Py_CLEAR(*buf);
    return -1;
}

/* buffer_room_slow's answer, without its call where the budget has room and no gap
 * is open (every event of a thread that is not losing events). */
static inline int
buffer_room(PyObject *st, PyObject **buf)
{
    PyObject *b;
    if (states_ok && Py_TYPE(st) == state_type && buffered_total < buffer_budget
            && slot(st, off_gap) == Py_None && (b = slot(st, off_buf)) != NULL) {
        *buf = Py_NewRef(b != Py_None ? b : st);  /* (room, and no gap to close) */
        return 0;
    }
    return buffer_room_slow(st, buf);
}

/* One event of `st` did not fit: count it in the thread's gap (slow path). */
static int
lose(PyObject *st, PyObject *op, PyObject *obj, PyObject *task)
{
    PyObject *args[4] = {st, op, obj, task};
    PyObject *r = PyObject_Vectorcall(lose_fn, args, 4, NULL);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* An event was buffered: count it, and wake the writer once the threshold is
 * passed (once until the writer re-arms it). */
static inline void
counted(void)
{
    if (++buffered_total >= wake_at && waker != NULL) {
        if (!wake_sent) {
            wake_sent = 1;
            if (wake_next) {
                wake_next = 0;
                wake_at = wake_at_normal;
            }
            PyObject *r = PyObject_CallNoArgs(waker);
            if (r == NULL)
                PyErr_Clear();
            else
                Py_DECREF(r);
        }
        if (buffered_total >= high_water && mono_now() - progress_ns < stuck_ns) {
            Py_BEGIN_ALLOW_THREADS
#if defined(__linux__)
            struct timespec pause = {0, throttle_ns};
            nanosleep(&pause, NULL);
#endif
            Py_END_ALLOW_THREADS
        }
    }
}

static PyObject *
configure_buffers(PyObject *mod, PyObject *args)
{
    Py_ssize_t budget, at, total, min_cap, high;
    PyObject *fn;
    long pause_ns;
    long long stuck;
    if (!PyArg_ParseTuple(args, "nnnOnnlL", &budget, &at, &total, &fn, &min_cap, &high,
                          &pause_ns, &stuck))
        return NULL;
    buffer_budget = budget;
    wake_at = at;
    wake_next = 0;
    high_water = high;
    throttle_ns = pause_ns;
    stuck_ns = stuck;
    progress_ns = mono_now();
    buffered_total = total;
    min_thread_cap = min_cap;
    wake_sent = 0;
    Py_XSETREF(waker, fn == Py_None ? NULL : Py_NewRef(fn));
    Py_RETURN_NONE;
}

static PyObject *
buffered(PyObject *mod, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromSsize_t(buffered_total);
}

static PyObject *
taken_count(PyObject *mod, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromLongLong(taken_total);
}

/* wake_after_next(): the next event buffered (by any thread) wakes the writer,
 * after it is in its buffer: a new file's first events go out at once. */
static PyObject *
wake_after_next(PyObject *mod, PyObject *Py_UNUSED(ignored))
{
    if (!wake_next) {
        wake_at_normal = wake_at;
        wake_next = 1;
    }
    wake_at = 1;  /* (any count: the writer may take events before the next one) */
    wake_sent = 0;
    Py_RETURN_NONE;
}

static PyObject *
rearm(PyObject *mod, PyObject *Py_UNUSED(ignored))
{
    wake_sent = 0;
    Py_RETURN_NONE;
}

static PyObject *
progress(PyObject *mod, PyObject *Py_UNUSED(ignored))
{
    progress_ns = mono_now();
    Py_RETURN_NONE;
}

/* THE POINT WHERE AN EVENT IS ABOUT TO BE BUFFERED: every event of the C paths
 * (record(): a traced lock's acquire/release; append(): everything else) goes
 * through here once it has its time stamp, op, object (its Ref), site and task.
 * A filter of events (summary mode) belongs here, in one call.
 *
 * Append an event (5 items, or 6 with the extra fields) to `buf`, stamped `ts`,
 * or `ts_ns` when `ts` is NULL. */
static int
buffer_put(PyObject *buf, PyObject *ts, long long ts_ns, PyObject *op, PyObject *obj,
           PyObject *site, PyObject *task, PyObject *extra)
{
    PyObject *items[6] = {ts, op, obj, site, task, extra};
    /* (an Ev, not a tuple: see Ev) */
    Py_ssize_t n = extra == NULL || extra == Py_None ? 5 : 6;
    PyObject *tuple = ts != NULL ? ev_new(n, items) : ev_new_ns(n, ts_ns, items);
    if (tuple == NULL)
        return -1;
    PyObject *res = buf_append(buf, tuple);
    Py_DECREF(tuple);
    if (res == NULL)
        return -1;
    Py_DECREF(res);
    return 0;
}

static PyObject *task_of_c(PyObject *st);
static PyObject *held_check_py;  /* see held_note */
static void held_clear(void);
static void forget_last_task(void);
static int held_note(PyObject *op, PyObject *lock, PyObject *task, PyObject *site);

/* Called (lock, task, site) when an asyncio task acquires a lock, or NULL: the
 * asyncio layer looks, once the task's step is over, for the await at which the
 * task is suspended while it still holds the lock (see recorder/_aio_held.py). */
static PyObject *task_acquired_fn;
/* The last (lock, task) told, compared by address only: the same task taking the
 * same lock again before the check ran need not be told again.  Forgotten by
 * set_task_acquired(), which the check calls. */
static void *told_lock, *told_task;

static PyObject *
set_task_acquired(PyObject *mod, PyObject *fn)
{
    if (fn == Py_None) {  /* (the asyncio layer is uninstalled) */
        held_clear();
        forget_last_task();
    }
    Py_XSETREF(task_acquired_fn, fn == Py_None ? NULL : Py_NewRef(fn));
    told_lock = told_task = NULL;
    Py_RETURN_NONE;
}

/* task_acquired_fn(lock, task, site): 0, or -1 with a non-Exception error set. */
static int
tell_task_acquired(PyObject *lock, PyObject *task, PyObject *site)
{
    PyObject *args[3] = {lock, task, site};
    PyObject *r = PyObject_Vectorcall(task_acquired_fn, args, 3, NULL);
    if (r == NULL)
        return swallow();
    Py_DECREF(r);
    return 0;
}

/* After an event was buffered: tell task_acquired_fn of an acquire by a task (or
 * note it in C, see held_note).  Returns 0, or -1 with a non-Exception error set. */
static inline int
note_task_acquired(PyObject *op, PyObject *lock, PyObject *task, PyObject *site)
{
    if (task_acquired_fn == NULL)  /* (no asyncio layer: a thread's lock, every time) */
        return 0;
    if (held_check_py != NULL)
        return held_note(op, lock, task, site);
    if (task == Py_None || op != op_acquire || (lock == told_lock && task == told_task))
        return 0;
    told_lock = lock;
    told_task = task;
    return tell_task_acquired(lock, task, site);
}

#include "_summary_fast.c"

/* Record (ts, op, obj, site, task) for the calling thread of a traced lock, or
 * count a drop.  `ts` may be 0 (take it now); the site is `given_site` when
 * not NULL, else with `want_site` the caller's.  Returns 0, or -1 with a non-Exception error set (the event is
 * then lost). */
static PyObject *task_for_slow(PyObject *st);

/* The task an event of `st` belongs to (new reference): task_of(st).  (A
 * configured state's `aio` slot read in place: every event asks.) */
static inline PyObject *
task_for(PyObject *st)
{
    if (states_ok && Py_TYPE(st) == state_type
            && *(PyObject **)((char *)st + off_aio) == Py_False)
        return Py_NewRef(Py_None);
    return task_for_slow(st);
}

static int
record(long long ts, PyObject *op, PyObject *obj, int want_site, LockCore *lc,
       PyObject *given_site)
{
    PyObject *st = NULL, *buf = NULL, *site = NULL, *task = NULL;
    int rc = 0;

    st = thread_state();
    if (st == NULL)
        goto fail;
    int full = buffer_room(st, &buf);
    if (full < 0)
        goto fail;
    if (given_site != NULL && (!full || sf_on)) {
        site = Py_NewRef(given_site);
    }
    else if (want_site && (!full || sf_on)) {
        site = caller_site(lc);
        if (site == NULL)
            goto fail;
    }
    else if (!full || sf_on) {
        site = Py_NewRef(int_zero);
    }
    if ((task = task_for(st)) == NULL)
        goto fail;
    /* (the event names the lock's Ref: see Ref) */
    PyObject *named = ((LockCore *)obj)->ref != NULL ? ((LockCore *)obj)->ref : obj;
    /* The event is about to be buffered: summary mode's filter (_summary_fast.c)
     * counts a repeat instead. */
    if (sf_on) {
        int seen = sumc_filter(st, buf, full, op, named, site, task, NULL, ts);
        if (seen < 0)
            goto fail;
        if (seen)
            goto done;
    }
    if (full) {
        if (lose(st, op, named, task) < 0)
            goto fail;
        goto done;
    }
    if (ts == 0 && (ts = now_ll()) == 0)
        goto fail;
    if (buffer_put(buf, NULL, ts, op, named, site, task, NULL) < 0)
        goto fail;
    counted();
    if (note_task_acquired(op, obj, task, site) < 0)
        goto fail;
    goto done;
fail:
    rc = swallow();
done:
    Py_XDECREF(st);
    Py_XDECREF(buf);
    Py_XDECREF(site);
    Py_XDECREF(task);
    return rc;
}

static inline int rlock_inner_level(PyObject *obj, int acquire);

/* append(st, op, obj, site, task, extra=None): recorder._core.append_event in C. */
static PyObject *
append(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 5 || nargs > 7) {
        PyErr_SetString(PyExc_TypeError, "append(st, op, obj, site, task, extra=None, ts=None)");
        return NULL;
    }
    PyObject *extra = nargs >= 6 ? args[5] : NULL;
    PyObject *given_ts = nargs == 7 && args[6] != Py_None ? args[6] : NULL;
    if (sf_op_is(args[1], op_acquire) ? rlock_inner_level(args[2], 1)
        : sf_op_is(args[1], op_release) && rlock_inner_level(args[2], 0))
        Py_RETURN_NONE;  /* (an RLock's inner level: see rlock_inner_level) */
    PyObject *buf;
    int full = buffer_room(args[0], &buf);
    if (full < 0)
        return NULL;
    PyObject *named = event_obj(args[2]);  /* (its Ref: see Ref) */
    /* The event is about to be buffered: summary mode's filter (_summary_fast.c)
     * counts a repeat instead. */
    if (sf_on) {
        long long given_ns = given_ts != NULL ? PyLong_AsLongLong(given_ts) : 0;
        int seen = given_ns == -1 && PyErr_Occurred() ? -1
            : sumc_filter(args[0], buf, full, args[1], named, args[3], args[4], extra,
                          given_ns);
        if (seen) {
            Py_DECREF(named);
            Py_XDECREF(buf);
            if (seen < 0)
                return NULL;
            Py_RETURN_NONE;
        }
    }
    if (full) {
        int lost = lose(args[0], args[1], named, args[4]);
        Py_DECREF(named);
        if (lost < 0)
            return NULL;
        Py_RETURN_NONE;
    }
    long long ts = given_ts != NULL ? 0 : now_ll();
    int rc = given_ts == NULL && ts == 0 ? -1
        : buffer_put(buf, given_ts, ts, args[1], named, args[3], args[4], extra);
    Py_DECREF(named);
    Py_DECREF(buf);
    if (rc < 0)
        return NULL;
    counted();
    if (note_task_acquired(args[1], args[2], args[4], args[3]) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* Append (op, obj) at `site` for the calling thread (its task too when it runs
 * asyncio), with `extra` (NULL: none): None, or NULL with an error (any error:
 * the caller swallows what it must). */
static PyObject *
emit_at(PyObject *op, PyObject *obj, PyObject *site, PyObject *extra)
{
    PyObject *st = thread_state(), *task = NULL, *r = NULL;
    if (st == NULL)
        return NULL;
    PyObject *aio = state_get(st, off_aio, s_aio);
    if (aio == NULL)
        goto done;
    int is_aio = PyObject_IsTrue(aio);
    Py_DECREF(aio);
    if (is_aio < 0)
        goto done;
    task = is_aio ? task_of_c(st) : Py_NewRef(Py_None);
    if (task == NULL)
        goto done;
    PyObject *full[6] = {st, op, obj, site, task, extra != NULL ? extra : Py_None};
    r = append(NULL, full, 6);
done:
    Py_DECREF(st);
    Py_XDECREF(task);
    return r;
}

/* emit_here(op, obj, depth, extra=None): recorder._core.emit(op, obj,
 * site_id(depth), extra) in one call, for the Python wrappers of Condition,
 * Semaphore, SimpleQueue and the pool's jobs: the calling thread's state, the
 * site `depth` frames up as site_id() counts them from its Python caller (-1: no
 * site), the running task, and the event.  Records nothing while recording is
 * off; never raises an Exception into the program. */
static PyObject *
emit_here(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 3 || nargs > 4) {
        PyErr_SetString(PyExc_TypeError, "emit_here(op, obj, depth, extra=None)");
        return NULL;
    }
    if (core_dict == NULL || !recording_on()) {
        if (PyErr_Occurred() && swallow() < 0)
            return NULL;
        Py_RETURN_NONE;
    }
    PyObject *site = NULL, *r = NULL;
    long depth = PyLong_AsLong(args[2]);
    if (depth == -1 && PyErr_Occurred())
        goto done;
    site = depth < 0 ? PyLong_FromLong(0) : site_id_c(mod, &args[2], 1);
    if (site != NULL)
        r = emit_at(args[0], args[1], site, nargs == 4 ? args[3] : NULL);
done:
    Py_XDECREF(site);
    if (r == NULL) {
        if (swallow() < 0)
            return NULL;
        Py_RETURN_NONE;
    }
    return r;
}

/* fn(self, *args, **kw) from a method's vectorcall arguments (without self). */
static PyObject *
call_with_self(PyObject *fn, PyObject *self, PyObject *const *args, Py_ssize_t nargs,
               PyObject *kwnames)
{
    Py_ssize_t n = nargs + (kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0);
    PyObject *small[8], **stack = n < 8 ? small : PyMem_Malloc((size_t)(n + 1) * sizeof(PyObject *));
    if (stack == NULL)
        return PyErr_NoMemory();
    stack[0] = self;
    for (Py_ssize_t i = 0; i < n; i++)
        stack[1 + i] = args[i];
    PyObject *r = PyObject_Vectorcall(fn, stack, 1 + nargs, kwnames);
    if (stack != small)
        PyMem_Free(stack);
    return r;
}

/* Hold each of `values` in its static `slots` (what they held let go): the hook
 * setters' bodies. */
static void
hold_all(PyObject **slots[], PyObject *const values[], int n)
{
    for (int i = 0; i < n; i++)
        Py_XSETREF(*slots[i], Py_NewRef(values[i]));
}

/* ------------------------------------------------------------- CondHooks */

/* A base of the traced Condition (recorder/_threading.py): notify and
 * notify_all in C.  Each records a ``signal`` on the condition when its lock
 * is held (as _is_owned() tells), then calls the original notify.  No fields:
 * it mixes with threading.Condition's layout.  A queue.Queue signals twice an
 * item, so this is on the queue hand-off's hot path. */
static PyObject *orig_notify_fn, *orig_notify_all_fn;
static PyObject *s_signal, *s_sig, *s_n, *s_notify, *s_notify_all, *s_waiters;

static PyObject *
set_condition_hooks(PyObject *mod, PyObject *args)
{
    PyObject *notify, *notify_all;
    if (!PyArg_ParseTuple(args, "OO", &notify, &notify_all))
        return NULL;
    Py_XSETREF(orig_notify_fn, Py_NewRef(notify));
    Py_XSETREF(orig_notify_all_fn, Py_NewRef(notify_all));
    Py_RETURN_NONE;
}

/* The extra fields {"sig": sig, "n": n} of a signal event (new reference).  The
 * usual ones (notify or notify_all of 0-15 waiters) are shared dicts, made once:
 * nothing changes an event's fields once it is buffered, and the encoder writes
 * a dict it met just before by copying that text. */
#define SIG_SHARED_N 16
static PyObject *sig_extras[2][SIG_SHARED_N];

static PyObject *
signal_extra(PyObject *sig, PyObject *n)
{
    int which = sig == s_notify ? 0 : sig == s_notify_all ? 1 : -1;
    long v = which >= 0 && PyLong_CheckExact(n) ? PyLong_AsLong(n) : -1;
    if (v == -1 && PyErr_Occurred())
        PyErr_Clear();
    PyObject **slot = v >= 0 && v < SIG_SHARED_N ? &sig_extras[which][v] : NULL;
    if (slot != NULL && *slot != NULL)
        return Py_NewRef(*slot);
    PyObject *extra = PyDict_New();
    if (extra == NULL || PyDict_SetItem(extra, s_sig, sig) < 0
            || PyDict_SetItem(extra, s_n, n) < 0) {
        Py_XDECREF(extra);
        return NULL;
    }
    if (slot != NULL)
        *slot = Py_NewRef(extra);
    return extra;
}

/* Record the signal (never raises: a failure is swallowed, as everywhere). */
static int
record_signal(PyObject *cond, PyObject *sig, PyObject *n)
{
    if (core_dict == NULL || !recording_on())
        return PyErr_Occurred() ? swallow() : 0;
    PyObject *owned = PyObject_CallMethodNoArgs(cond, s_is_owned);
    if (owned == NULL)
        return swallow();  /* (the original notify raises its own error) */
    int is = PyObject_IsTrue(owned);
    Py_DECREF(owned);
    if (is <= 0)
        return is < 0 ? swallow() : 0;
    PyObject *extra = signal_extra(sig, n);
    if (extra == NULL)
        return swallow();
    /* depth 1: our caller's frame (this function has none of its own) */
    PyObject *eargs[4] = {s_signal, cond, int_one, extra};
    PyObject *r = emit_here(NULL, eargs, 4);
    Py_DECREF(extra);
    if (r == NULL)
        return swallow();
    Py_DECREF(r);
    return 0;
}

static PyObject *
call_orig_notify(PyObject *self, PyObject *n)
{
    if (orig_notify_fn == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "traced Condition without its original notify");
        return NULL;
    }
    PyObject *args[2] = {self, n};
    return PyObject_Vectorcall(orig_notify_fn, args, 2, NULL);
}

static PyObject *
CondHooks_notify(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *n = int_one;
    Py_ssize_t nkw = kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0;
    if (nargs + nkw > 1 || (nkw == 1 && PyUnicode_Compare(PyTuple_GET_ITEM(kwnames, 0), s_n) != 0)) {
        /* Not notify's signature: the original raises its own error (no signal). */
        if (orig_notify_fn == NULL || nargs + nkw > 8) {
            PyErr_SetString(PyExc_TypeError, "notify() takes at most one argument (n)");
            return NULL;
        }
        PyObject *stack[9] = {self};
        for (Py_ssize_t i = 0; i < nargs + nkw; i++)
            stack[1 + i] = args[i];
        return PyObject_Vectorcall(orig_notify_fn, stack, 1 + nargs, kwnames);
    }
    if (nargs == 1)
        n = args[0];
    else if (nkw == 1)
        n = args[0];
    if (record_signal(self, s_notify, n) < 0)
        return NULL;
    return call_orig_notify(self, n);
}

static PyObject *
CondHooks_notify_all(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (nargs > 0 || kwnames != NULL) {  /* (the original raises its own error) */
        Py_ssize_t n = nargs + (kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0);
        if (orig_notify_all_fn == NULL || n > 8) {
            PyErr_SetString(PyExc_TypeError, "notify_all() takes no arguments");
            return NULL;
        }
        PyObject *stack[9] = {self};
        for (Py_ssize_t i = 0; i < n; i++)
            stack[1 + i] = args[i];
        return PyObject_Vectorcall(orig_notify_all_fn, stack, 1 + nargs, kwnames);
    }
    PyObject *waiters = PyObject_GetAttr(self, s_waiters);
    if (waiters == NULL)
        return NULL;
    Py_ssize_t len = PyObject_Size(waiters);
    Py_DECREF(waiters);
    if (len < 0)
        return NULL;
    PyObject *n = PyLong_FromSsize_t(len);
    if (n == NULL)
        return NULL;
    PyObject *r = record_signal(self, s_notify_all, n) < 0 ? NULL : call_orig_notify(self, n);
    Py_DECREF(n);
    return r;
}

/* The traced Condition's constructor in C (set_constructors): __new__ and
 * __init__ of recorder/_threading.py's Condition without a Python frame each;
 * a pool makes one per job (each Future's).  What it needs of _threading.py:
 * the original Condition and its __init__, the traced RLock, the Python rest of
 * a definition init_condition leaves to Python (_define_condition(cond, lock,
 * own_lock, 1)) and the Python __init__ for odd arguments (its errors). */
static PyObject *ctor_orig_condition, *ctor_orig_condition_init, *ctor_traced_rlock,
    *ctor_condition_rest, *ctor_py_condition_init;

/* fn(self, *args, **kwds) for an __init__: 0, or -1 with its error. */
static int
init_with_self(PyObject *fn, PyObject *self, PyObject *args, PyObject *kwds)
{
    Py_ssize_t n = PyTuple_GET_SIZE(args);
    PyObject *all = PyTuple_New(n + 1);
    if (all == NULL)
        return -1;
    PyTuple_SET_ITEM(all, 0, Py_NewRef(self));
    for (Py_ssize_t i = 0; i < n; i++)
        PyTuple_SET_ITEM(all, i + 1, Py_NewRef(PyTuple_GET_ITEM(args, i)));
    PyObject *r = PyObject_Call(fn, all, kwds);
    Py_DECREF(all);
    Py_XDECREF(r);
    return r != NULL ? 0 : -1;
}

static PyObject *
CondHooks_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    /* A Thread's own _started Event: an untraced condition (as in_thread_internals) */
    if (ctor_orig_condition != NULL && thread_internals_make(1))
        return PyObject_Call(ctor_orig_condition, args, kwds);
    /* (object.__new__, not tp_alloc: before 3.13 it gives the instance the
     * inline values its attributes go to; without them, its first attribute made
     * it a __dict__ -- a dict per Condition, one more object for the GC) */
    return PyBaseObject_Type.tp_new(type, empty_args, NULL);
}

static int
CondHooks_init(PyObject *self, PyObject *args, PyObject *kwds)
{
    if (ctor_py_condition_init == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "traced Condition without its constructors");
        return -1;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(args), nkw = kwds != NULL ? PyDict_GET_SIZE(kwds) : 0;
    PyObject *lock = Py_None;
    if (n == 1 && nkw == 0) {
        lock = PyTuple_GET_ITEM(args, 0);
    }
    else if (n == 0 && nkw == 1) {
        lock = PyDict_GetItemWithError(kwds, PyTuple_GET_ITEM(kw_lock, 0));  /* (borrowed) */
        if (lock == NULL && PyErr_Occurred())
            return -1;
    }
    if (lock == NULL || n + nkw > 1)  /* odd arguments: the Python __init__ raises */
        return init_with_self(ctor_py_condition_init, self, args, kwds);
    int own = lock == Py_None;
    lock = own ? PyObject_CallNoArgs(ctor_traced_rlock) : Py_NewRef(lock);
    if (lock == NULL)
        return -1;
    PyObject *own_lock = own ? Py_True : Py_False;
    PyObject *cargs[2] = {self, lock};
    PyObject *r = PyObject_Vectorcall(ctor_orig_condition_init, cargs, 2, NULL);
    if (r != NULL) {
        Py_DECREF(r);
        r = init_condition_impl(NULL, self, lock, own_lock, 1);
    }
    if (r == Py_False) {
        Py_DECREF(r);
        PyObject *rargs[4] = {self, lock, own_lock, int_one};
        r = PyObject_Vectorcall(ctor_condition_rest, rargs, 4, NULL);
    }
    Py_DECREF(lock);
    Py_XDECREF(r);
    return r != NULL ? 0 : -1;
}

/* A traced Condition's _ls_def is its Ref's (made when read, if lazy); set, it
 * becomes its Ref's.  Only before it has a Ref (an odd order: Python's define()
 * attaches it first) is it an attribute of its own, under another name. */
static PyObject *s_ls_def_early;

static Ref *
cond_ref(PyObject *self)
{
    PyObject *r;
    if (lookup_attr(self, s_ls_ref, &r) <= 0)  /* (none: no AttributeError made) */
        return NULL;
    if (Py_TYPE(r) != &Ref_Type) {
        Py_DECREF(r);
        return NULL;
    }
    return (Ref *)r;
}

static PyObject *
CondHooks_get_def(PyObject *self, void *Py_UNUSED(closure))
{
    Ref *r = cond_ref(self);
    if (r == NULL) {
        PyObject *early = NULL;
        if (!PyErr_Occurred() && lookup_attr(self, s_ls_def_early, &early) == 0)
            PyErr_SetString(PyExc_AttributeError, "_ls_def");
        return early;
    }
    PyObject *d = ref_def(r);
    Py_DECREF(r);
    if (d == NULL && !PyErr_Occurred())
        PyErr_SetString(PyExc_AttributeError, "_ls_def");
    return Py_XNewRef(d);
}

static int
CondHooks_set_def(PyObject *self, PyObject *value, void *Py_UNUSED(closure))
{
    Ref *r = value != NULL ? cond_ref(self) : NULL;
    if (r == NULL)
        return PyErr_Occurred() ? -1 : PyObject_GenericSetAttr(self, s_ls_def_early, value);
    if (r->def != value) {  /* (another dict: written field by field) */
        Py_XSETREF(r->def, Py_NewRef(value));
        r->def_version = 0;
    }
    Py_DECREF(r);
    return 0;
}

static PyGetSetDef CondHooks_getset[] = {
    {"_ls_def", (getter)CondHooks_get_def, (setter)CondHooks_set_def, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef CondHooks_methods[] = {
    {"notify", (PyCFunction)(void (*)(void))CondHooks_notify, METH_FASTCALL | METH_KEYWORDS,
     "Wake up one or more threads waiting on this condition, if any."},
    {"notify_all", (PyCFunction)(void (*)(void))CondHooks_notify_all, METH_FASTCALL | METH_KEYWORDS,
     "Wake up all threads waiting on this condition."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject CondHooks_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "recorder._speedups.CondHooks",
    .tp_basicsize = sizeof(PyObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "notify/notify_all, __new__ and __init__ of the traced threading.Condition"
              " (recorder/_threading.py).",
    .tp_methods = CondHooks_methods,
    .tp_new = CondHooks_new,
    .tp_init = CondHooks_init,
    .tp_getset = CondHooks_getset,
};

/* ---------------------------------------------------- asyncio async-with */

static PyObject *aio_tasks;          /* asyncio.tasks._current_tasks: loop -> task */
static PyObject *aio_running_loop;   /* asyncio.events._get_running_loop */
static PyObject *aio_current_task;   /* fallback: () -> current task or None */
static PyObject *aio_rec_of;         /* recorder._aio_tasks.rec_of */
static PyObject *aio_site_by_lasti;  /* recorder._aio_sync._site_by_lasti */
static PyObject *aio_site_from;      /* recorder._aio_sync._site_from(frame, task) */
static PyObject *aio_current;        /* recorder._aio_tasks.current, or NULL */
static PyObject *s_ls_rec, *s_current_task_id;

static PyObject *
configure_aio(PyObject *mod, PyObject *args)
{
    PyObject *tasks, *loop, *current, *rec_of, *by_lasti, *site_from, *task_id = NULL;
    if (!PyArg_ParseTuple(args, "OOOOO!O|O", &tasks, &loop, &current, &rec_of,
                          &PyDict_Type, &by_lasti, &site_from, &task_id))
        return NULL;
    Py_XSETREF(aio_current, task_id == NULL || task_id == Py_None ? NULL : Py_NewRef(task_id));
    forget_last_task();
    Py_XSETREF(aio_tasks, PyDict_Check(tasks) ? Py_NewRef(tasks) : NULL);
    Py_XSETREF(aio_running_loop, Py_NewRef(loop));
    Py_XSETREF(aio_current_task, Py_NewRef(current));
    Py_XSETREF(aio_rec_of, Py_NewRef(rec_of));
    Py_XSETREF(aio_site_by_lasti, Py_NewRef(by_lasti));
    Py_XSETREF(aio_site_from, Py_NewRef(site_from));
    Py_RETURN_NONE;
}

/* The last task whose record aio_task_rec read, weakly (asyncio's set of all
 * tasks makes a weak reference to each already: this is the same one), and that
 * record: the events of one task step (a request's lock, its log handler's)
 * read `_ls_rec` once.  Forgotten at configure_aio and when the asyncio layer is
 * uninstalled (set_task_acquired(None)). */
static PyObject *last_task_ref, *last_task_rec;

static void
forget_last_task(void)
{
    Py_CLEAR(last_task_ref);
    Py_CLEAR(last_task_rec);
}

/* The recording object of the running task (new reference), or None. */
static PyObject *
aio_task_rec(void)
{
    PyObject *t;
    if (aio_tasks != NULL) {
        PyObject *loop = PyObject_CallNoArgs(aio_running_loop);
        if (loop == NULL)
            return NULL;
        t = loop == Py_None ? NULL : PyDict_GetItemWithError(aio_tasks, loop);  /* borrowed */
        Py_DECREF(loop);
        if (t == NULL) {
            if (PyErr_Occurred())
                return NULL;
            Py_RETURN_NONE;
        }
        Py_INCREF(t);
    }
    else {
        t = PyObject_CallNoArgs(aio_current_task);
        if (t == NULL)
            return NULL;
    }
    if (t == Py_None)
        return t;
    if (last_task_ref != NULL && PyWeakref_GetObject(last_task_ref) == t) {
        Py_DECREF(t);
        return Py_NewRef(last_task_rec);
    }
    PyObject *rec = PyObject_GetAttr(t, s_ls_rec);
    if (rec == NULL && PyErr_ExceptionMatches(PyExc_AttributeError)) {
        PyErr_Clear();
        rec = PyObject_CallOneArg(aio_rec_of, t);
    }
    if (rec != NULL && rec != Py_None) {
        PyObject *ref = PyWeakref_NewRef(t, NULL);
        if (ref == NULL) {
            PyErr_Clear();  /* (not weakly referenceable: not remembered) */
        }
        else {
            Py_XSETREF(last_task_ref, ref);
            Py_XSETREF(last_task_rec, Py_NewRef(rec));
        }
    }
    Py_DECREF(t);
    return rec;
}

/* recorder._core.task_of(st) of a state that runs asyncio (new reference): the
 * running task's record, or None.  In C while _core.current_task_id is the
 * asyncio layer's own (aio_task_rec() is its body): a threading lock taken by a
 * task (a logging handler's, under an asyncio server) called two Python functions
 * an event. */
static PyObject *
task_of_c(PyObject *st)
{
    if (aio_current != NULL && aio_running_loop != NULL && core_dict != NULL) {
        PyObject *fn = PyDict_GetItemWithError(core_dict, s_current_task_id);  /* borrowed */
        if (fn == aio_current) {
            PyObject *rec = aio_task_rec();
            if (rec == NULL && PyErr_ExceptionMatches(PyExc_Exception)) {
                PyErr_Clear();  /* (as task_of: None) */
                Py_RETURN_NONE;
            }
            return rec;
        }
        if (fn == NULL)
            PyErr_Clear();
    }
    return PyObject_CallOneArg(task_of_fn, st);
}

/* The site of the code that awaits the calling coroutine (new reference). */
static PyObject *
aio_caller_site(PyObject *task)
{
    PyFrameObject *here = PyEval_GetFrame();  /* borrowed: the __aenter__ coroutine */
    if (here == NULL)
        return PyLong_FromLong(0);
    PyFrameObject *f = PyFrame_GetBack(here);  /* the awaiting frame */
    if (f == NULL)
        return PyLong_FromLong(0);
    PyCodeObject *code = PyFrame_GetCode(f);
    PyObject *key = PyLong_FromVoidPtr(code);
    Py_DECREF(code);
    PyObject *sid = NULL;
    if (key != NULL) {
        PyObject *by_lasti = PyDict_GetItemWithError(aio_site_by_lasti, key);  /* borrowed */
        Py_DECREF(key);
        if (by_lasti != NULL && PyDict_Check(by_lasti)) {
            PyObject *lasti = PyLong_FromLong(frame_lasti(f));
            if (lasti != NULL) {
                sid = PyDict_GetItemWithError(by_lasti, lasti);  /* borrowed */
                Py_DECREF(lasti);
                Py_XINCREF(sid);
            }
        }
    }
    if (sid == NULL && !PyErr_Occurred()) {
        PyObject *args[2] = {(PyObject *)f, task};
        sid = PyObject_Vectorcall(aio_site_from, args, 2, NULL);
    }
    Py_DECREF(f);
    return sid;
}

/* ------------------------------------------- locks held across an await
 *
 * What recorder/_aio_held.py's task_acquired and _check do, in C: after an
 * acquire by a task, a check once the loop's current iteration is over (a
 * call_soon) looks whether the task is suspended at an await while it still
 * holds the lock (then a `suspend` event at that await).  In Python every
 * acquire by a task called task_acquired and every loop iteration ran _check,
 * which asked each lock whether it was still taken: 14k instructions a request
 * of an asyncio server whose handler takes a lock and logs (half of what full
 * recording cost it).  Here an acquire is noted in a table, its release (by any
 * task, the holder's own reentrant ones counted) takes it out again, and the
 * check calls Python (check_held) only with what is still noted: the locks
 * held when the step ended, which it verifies as _check did.  One check is
 * scheduled per loop and iteration.  Past HELD_SLOTS notes, an acquire is told
 * to task_acquired as before (Python's own pending table and check). */
#define HELD_SLOTS 64
#define HELD_LOOPS 8
typedef struct {
    PyObject *lock, *task, *site, *loop;  /* strong */
    int depth;  /* the task's acquires of it less its releases */
} Held;
static Held held_tab[HELD_SLOTS];
static int held_n;
static PyObject *held_loops[HELD_LOOPS];  /* loops with a check scheduled (strong) */
static int held_nloops;
static PyObject *held_context;  /* the Context the check runs in */
static PyObject *held_check_fn;  /* this module's held_check (for call_soon) */
static PyObject *s_call_soon, *held_kwnames;  /* "call_soon", ("context",) */

static void
held_drop(int i)
{
    Held h = held_tab[i];
    held_n--;
    memmove(&held_tab[i], &held_tab[i + 1], (size_t)(held_n - i) * sizeof(Held));
    Py_DECREF(h.lock);
    Py_DECREF(h.task);
    Py_DECREF(h.site);
    Py_DECREF(h.loop);
}

static void
held_clear(void)
{
    while (held_n > 0)
        held_drop(held_n - 1);
    while (held_nloops > 0)
        Py_DECREF(held_loops[--held_nloops]);
}

/* Schedule the check of `loop`'s notes after its current iteration, once. */
static int
held_schedule(PyObject *loop)
{
    for (int i = 0; i < held_nloops; i++)
        if (held_loops[i] == loop)
            return 0;
    /* loop.call_soon(held_check, loop, context=held_context) */
    PyObject *args[4] = {loop, held_check_fn, loop, held_context};
    PyObject *r = PyObject_VectorcallMethod(s_call_soon, args, 3, held_kwnames);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    if (held_nloops == HELD_LOOPS) {  /* (a loop closed before its check ran) */
        Py_DECREF(held_loops[0]);
        memmove(&held_loops[0], &held_loops[1], (HELD_LOOPS - 1) * sizeof(PyObject *));
        held_nloops--;
    }
    held_loops[held_nloops++] = Py_NewRef(loop);
    return 0;
}

/* An event of `task` on `lock` was buffered: an acquire is noted (and its loop's
 * check scheduled), a release takes the note out.  Returns 0, or -1 with a
 * non-Exception error set. */
static int
held_note(PyObject *op, PyObject *lock, PyObject *task, PyObject *site)
{
    if (sf_on)  /* (summary mode does not write `suspend`) */
        return 0;
    if (op == op_release) {
        for (int i = held_n - 1; i >= 0; i--) {
            if (held_tab[i].lock != lock)
                continue;
            if (held_tab[i].task != task || --held_tab[i].depth <= 0)
                held_drop(i);
            break;
        }
        return 0;
    }
    if (op != op_acquire || task == Py_None || aio_running_loop == NULL)
        return 0;
    for (int i = held_n - 1; i >= 0; i--) {
        if (held_tab[i].lock != lock)
            continue;
        if (held_tab[i].task == task) {  /* (reentrant) */
            held_tab[i].depth++;
            return 0;
        }
        held_drop(i);  /* (taken by another task since: noted again below) */
        break;
    }
    PyObject *loop = PyObject_CallNoArgs(aio_running_loop);
    if (loop == NULL)
        return swallow();
    if (loop == Py_None) {
        Py_DECREF(loop);
        return 0;
    }
    if (held_n == HELD_SLOTS) {  /* (more locks held at once: noted in Python) */
        Py_DECREF(loop);
        return tell_task_acquired(lock, task, site);
    }
    held_tab[held_n++] = (Held){Py_NewRef(lock), Py_NewRef(task), Py_NewRef(site), loop, 1};
    if (held_schedule(loop) < 0)
        return swallow();
    return 0;
}

/* held_check(loop): the check scheduled on `loop` (see held_note). */
static PyObject *
held_check(PyObject *mod, PyObject *loop)
{
    for (int i = 0; i < held_nloops; i++) {
        if (held_loops[i] == loop) {
            held_nloops--;
            memmove(&held_loops[i], &held_loops[i + 1],
                    (size_t)(held_nloops - i) * sizeof(PyObject *));
            Py_DECREF(loop);
            break;
        }
    }
    PyObject *held = NULL;
    for (int i = 0; i < held_n;) {
        if (held_tab[i].loop != loop) {
            i++;
            continue;
        }
        if (held == NULL && (held = PyList_New(0)) == NULL)
            goto error;
        PyObject *t = PyTuple_Pack(3, held_tab[i].lock, held_tab[i].task, held_tab[i].site);
        if (t == NULL || PyList_Append(held, t) < 0) {
            Py_XDECREF(t);
            goto error;
        }
        Py_DECREF(t);
        held_drop(i);
    }
    if (held != NULL && held_check_py != NULL) {
        PyObject *r = PyObject_CallOneArg(held_check_py, held);
        if (r == NULL)
            goto error;
        Py_DECREF(r);
    }
    Py_XDECREF(held);
    Py_RETURN_NONE;
error:
    Py_XDECREF(held);
    if (swallow() < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* set_held_check(check, context): the asyncio layer's check of the locks still
 * noted when a loop iteration ended, check(list of (lock, task, site)), run in
 * `context`; None: back to calling task_acquired at each acquire.  The notes go. */
static PyObject *
set_held_check(PyObject *mod, PyObject *args)
{
    PyObject *check, *context;
    if (!PyArg_ParseTuple(args, "OO", &check, &context))
        return NULL;
    held_clear();
    if (held_check_fn == NULL
            && (held_check_fn = PyObject_GetAttrString(mod, "held_check")) == NULL)
        return NULL;
    if (s_call_soon == NULL && (s_call_soon = PyUnicode_InternFromString("call_soon")) == NULL)
        return NULL;
    if (held_kwnames == NULL && (held_kwnames = Py_BuildValue("(s)", "context")) == NULL)
        return NULL;
    Py_XSETREF(held_check_py, check == Py_None ? NULL : Py_NewRef(check));
    Py_XSETREF(held_context, Py_NewRef(context));
    Py_RETURN_NONE;
}

/* aio_event(op, lock, want_site): record an event of the running task (the fast
 * path of a traced asyncio.Lock's ``async with``), on the calling thread. */
static PyObject *
aio_event(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "aio_event(op, lock, want_site)");
        return NULL;
    }
    if (aio_site_from == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "configure_aio() was not called");
        return NULL;
    }
    PyObject *task = aio_task_rec();
    if (task == NULL)
        return NULL;
    PyObject *site = PyObject_IsTrue(args[2]) ? aio_caller_site(task) : PyLong_FromLong(0);
    if (site == NULL) {
        Py_DECREF(task);
        return NULL;
    }
    PyObject *r = NULL;
    PyObject *st = thread_state();
    if (st != NULL) {
        PyObject *full_args[5] = {st, args[0], args[1], site, task};
        r = append(mod, full_args, 5);
        Py_DECREF(st);
    }
    Py_DECREF(site);
    Py_DECREF(task);
    return r;
}

/* --------------------------------------------------------------- LockCore */


static int
LockCore_traverse(LockCore *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->lock);
    Py_VISIT(self->ref);
    Py_VISIT(self->def);
    int rc = memo_traverse(&self->memo, visit, arg);
    for (int i = 0; rc == 0 && self->more != NULL && i < MEMO_MORE; i++)
        rc = memo_traverse(&self->more->m[i], visit, arg);
    return rc;
}

static int
LockCore_clear(LockCore *self)
{
    Py_CLEAR(self->lock);
    memo_clear(&self->memo);
    Py_CLEAR(self->ref);
    Py_CLEAR(self->def);
    more_memos_free(self);
    return 0;
}

static void
LockCore_dealloc(LockCore *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    LockCore_clear(self);
    tp->tp_free((PyObject *)self);
}

/* The inner lock types' method descriptors, called with the inner lock as
 * their first argument: as fast as a bound method, without one (a lookup by
 * name each call, PyObject_VectorcallMethod, cost a queue hand-off 4% more
 * instructions).  Two types: _thread.lock and _thread.RLock. */
typedef struct {
    PyTypeObject *type;
    PyObject *name;
    PyObject *descr;
} InnerMethod;
static InnerMethod inner_methods[8];

static PyObject *
inner_method(PyTypeObject *tp, PyObject *name)
{
    for (int i = 0; i < 8; i++) {
        InnerMethod *m = &inner_methods[i];
        if (m->type == tp && m->name == name)
            return m->descr;
        if (m->type == NULL) {
            PyObject *d = _PyType_Lookup(tp, name);  /* borrowed */
            if (d == NULL || Py_TYPE(d) != &PyMethodDescr_Type)
                return NULL;
            m->type = (PyTypeObject *)Py_NewRef((PyObject *)tp);  /* (kept: the descr is its) */
            m->name = Py_NewRef(name);
            m->descr = Py_NewRef(d);
            return d;
        }
    }
    return NULL;
}

/* The C function of a method descriptor of calling convention `flags` alone,
 * or NULL. */
static PyCFunction
method_c(PyObject *descr, int flags)
{
    if (Py_TYPE(descr) != &PyMethodDescr_Type)
        return NULL;
    PyMethodDef *d = ((PyMethodDescrObject *)descr)->d_method;
    return (d->ml_flags & ~METH_COEXIST) == flags ? d->ml_meth : NULL;
}

/* ------------------------------------------- the inner lock, driven directly
 *
 * A traced lock's inner _thread.lock / _thread.RLock is tried and released
 * here as their own C methods do it, without the method call: acquire() parses
 * its arguments with the generic keyword parser, which was a quarter of a
 * traced `with lock:` pair.  The layouts below are those of CPython 3.10-3.13;
 * raw_check() proves them on fresh objects at import (size, then every
 * transition checked against the objects' own methods), and a type that fails
 * is never driven directly (raw_lock_type / raw_rlock_type stay NULL). */
#if PY_VERSION_HEX < 0x030E0000
#include <pythread.h>
typedef struct {
    PyObject_HEAD
    PyThread_type_lock lock_lock;
    PyObject *in_weakreflist;
    char locked;
} RawLock;

typedef struct {
    PyObject_HEAD
    PyThread_type_lock rlock_lock;
    unsigned long rlock_owner;
    unsigned long rlock_count;
    PyObject *in_weakreflist;
} RawRLock;
#define LS_RAW_LOCKS 1
#endif
static PyTypeObject *raw_lock_type, *raw_rlock_type;

/* acquire(False) of the inner lock: 1 taken, 0 busy, -1 not driven here (call
 * the method). */
static inline int
raw_try(PyObject *lk)
{
#ifdef LS_RAW_LOCKS
    PyTypeObject *tp = Py_TYPE(lk);
    if (tp == raw_lock_type) {
        RawLock *r = (RawLock *)lk;
        if (PyThread_acquire_lock_timed(r->lock_lock, 0, 0) != PY_LOCK_ACQUIRED)
            return 0;
        r->locked = 1;
        return 1;
    }
    if (tp == raw_rlock_type) {
        RawRLock *r = (RawRLock *)lk;
        unsigned long tid = PyThread_get_thread_ident();
        if (r->rlock_count > 0 && r->rlock_owner == tid) {
            if (r->rlock_count + 1 == 0)
                return -1;  /* (the method raises OverflowError) */
            r->rlock_count++;
            return 1;
        }
        if (PyThread_acquire_lock_timed(r->rlock_lock, 0, 0) != PY_LOCK_ACQUIRED)
            return 0;
        r->rlock_owner = tid;
        r->rlock_count = 1;
        return 1;
    }
#else
    (void)lk;
#endif
    return -1;
}

/* release() of the inner lock: 1 released, -1 not driven here (call the
 * method, which also raises when the caller may not release). */
static inline int
raw_release(PyObject *lk)
{
#ifdef LS_RAW_LOCKS
    PyTypeObject *tp = Py_TYPE(lk);
    if (tp == raw_lock_type) {
        RawLock *r = (RawLock *)lk;
        if (!r->locked)
            return -1;
        r->locked = 0;
        PyThread_release_lock(r->lock_lock);
        return 1;
    }
    if (tp == raw_rlock_type) {
        RawRLock *r = (RawRLock *)lk;
        if (r->rlock_count == 0 || r->rlock_owner != PyThread_get_thread_ident())
            return -1;
        if (--r->rlock_count == 0) {
            r->rlock_owner = 0;
            PyThread_release_lock(r->rlock_lock);
        }
        return 1;
    }
#else
    (void)lk;
#endif
    return -1;
}

/* Whether an RLock's inner levels are left out (1 for `lc`, 0 if not): an
 * acquire by its owner that leaves it held twice or more, and a release that
 * leaves it held still.  They cannot block (the owner never waits for its own
 * lock), order nothing and end no hold: a hold runs from the outermost acquire
 * to the release that frees the lock, as the analyzer pairs a trace's events.
 * Recorded, they were half the events of a logging call in full mode (Handler.
 * handle, then flush inside emit, takes the handler's lock again); counted in
 * summary mode, holds of their own in the histograms.  Judged after the
 * operation, on the inner RLock's count (only its owner changes it).  An RLock
 * not driven directly (raw_rlock_type NULL) is recorded as before. */
static inline int
rlock_levels_left_out(LockCore *lc)
{
#ifdef LS_RAW_LOCKS
    return lc->lock != NULL && raw_rlock_type != NULL && Py_TYPE(lc->lock) == raw_rlock_type;
#else
    (void)lc;
    return 0;
#endif
}

/* Whether the acquire (`acquire`) or release of `lc` just done is an inner level
 * that is left out (see rlock_levels_left_out). */
static inline int
rlock_inner_level_of(LockCore *lc, int acquire)
{
#ifdef LS_RAW_LOCKS
    if (!rlock_levels_left_out(lc))
        return 0;
    RawRLock *r = (RawRLock *)lc->lock;
    return r->rlock_owner == PyThread_get_thread_ident()
        && r->rlock_count >= (acquire ? 2UL : 1UL);
#else
    (void)lc;
    (void)acquire;
    return 0;
#endif
}

/* The same of an event's object, which may be any. */
static inline int
rlock_inner_level(PyObject *obj, int acquire)
{
    return PyObject_TypeCheck(obj, &LockCore_Type)
        && rlock_inner_level_of((LockCore *)obj, acquire);
}

#ifdef LS_RAW_LOCKS
/* obj.name(arg) (no argument when NULL) returns `want` (Py_True / Py_False), or
 * returns at all when `want` is NULL?  1 yes, 0 no or an error (cleared). */
static int
raw_call_is(PyObject *obj, const char *name, PyObject *arg, PyObject *want)
{
    PyObject *r = arg != NULL ? PyObject_CallMethod(obj, name, "O", arg)
                              : PyObject_CallMethod(obj, name, NULL);
    if (r == NULL) {
        PyErr_Clear();
        return 0;
    }
    Py_DECREF(r);
    return want == NULL || r == want;
}

#define raw_probe(obj, name, want) raw_call_is(obj, name, NULL, want)
#define raw_method_try(obj, want) raw_call_is(obj, "acquire", Py_False, want)
#define raw_method_release(obj) raw_call_is(obj, "release", NULL, NULL)

/* Whether the layout assumed for _thread's lock type `tp` holds: every state
 * the direct paths make is the one the type's own methods see, and back. */
static int
raw_check_lock(PyTypeObject *tp, PyObject *allocate)
{
    if (tp->tp_basicsize != (Py_ssize_t)sizeof(RawLock))
        return 0;
    PyObject *lk = PyObject_CallNoArgs(allocate);
    if (lk == NULL || Py_TYPE(lk) != tp) {
        Py_XDECREF(lk);
        PyErr_Clear();
        return 0;
    }
    RawLock *r = (RawLock *)lk;
    int ok = r->lock_lock != NULL && r->locked == 0;
    raw_lock_type = tp;  /* (so that raw_try/raw_release drive it) */
    ok = ok && raw_try(lk) == 1 && r->locked == 1 && raw_probe(lk, "locked", Py_True)
         && raw_try(lk) == 0 && raw_method_try(lk, Py_False)
         && raw_release(lk) == 1 && r->locked == 0 && raw_probe(lk, "locked", Py_False)
         && raw_release(lk) == -1
         && raw_method_try(lk, Py_True) && r->locked == 1 && raw_try(lk) == 0
         && raw_release(lk) == 1 && raw_probe(lk, "locked", Py_False)
         && raw_try(lk) == 1 && raw_method_release(lk) && r->locked == 0
         && raw_probe(lk, "locked", Py_False);
    if (r->locked)
        raw_release(lk);  /* (its dealloc would release it anyway) */
    raw_lock_type = NULL;
    Py_DECREF(lk);
    return ok;
}

static int
raw_check_rlock(PyTypeObject *tp)
{
    if (tp->tp_basicsize != (Py_ssize_t)sizeof(RawRLock))
        return 0;
    PyObject *lk = PyObject_CallNoArgs((PyObject *)tp);
    if (lk == NULL) {
        PyErr_Clear();
        return 0;
    }
    RawRLock *r = (RawRLock *)lk;
    int ok = r->rlock_lock != NULL && r->rlock_count == 0 && r->rlock_owner == 0;
    raw_rlock_type = tp;
    ok = ok && raw_try(lk) == 1 && r->rlock_count == 1 && raw_probe(lk, "_is_owned", Py_True)
         && raw_try(lk) == 1 && r->rlock_count == 2 && raw_method_try(lk, Py_True)
         && r->rlock_count == 3
         && raw_release(lk) == 1 && raw_method_release(lk) && raw_release(lk) == 1
         && r->rlock_count == 0 && r->rlock_owner == 0 && raw_probe(lk, "_is_owned", Py_False)
         && raw_release(lk) == -1
         && raw_method_try(lk, Py_True) && r->rlock_count == 1
         && raw_release(lk) == 1 && raw_probe(lk, "_is_owned", Py_False)
         && raw_method_try(lk, Py_True) && raw_method_release(lk) && r->rlock_count == 0;
    while (r->rlock_count > 0 && raw_release(lk) == 1)
        ;
    raw_rlock_type = NULL;
    Py_DECREF(lk);
    return ok;
}
#endif

/* At import: drive _thread.LockType and _thread.RLock directly only if their
 * layout checks out here (see above); anything else goes through the methods. */
static int
raw_init(void)
{
#ifdef LS_RAW_LOCKS
    /* (a subinterpreter's _thread types are its own, and go with it: this module,
     * initialised once per process, then drives none) */
    if (PyInterpreterState_Get() != PyInterpreterState_Main())
        return 0;
    PyObject *thread = PyImport_ImportModule("_thread");
    if (thread == NULL)
        return -1;
    PyObject *lt = PyObject_GetAttrString(thread, "LockType");
    PyObject *rt = lt != NULL ? PyObject_GetAttrString(thread, "RLock") : NULL;
    PyObject *allocate = rt != NULL ? PyObject_GetAttrString(thread, "allocate_lock") : NULL;
    Py_DECREF(thread);
    if (allocate == NULL) {
        Py_XDECREF(lt);
        Py_XDECREF(rt);
        return -1;
    }
    int lock_ok = PyType_Check(lt) && raw_check_lock((PyTypeObject *)lt, allocate);
    Py_DECREF(allocate);
    int rlock_ok = PyType_Check(rt) && raw_check_rlock((PyTypeObject *)rt);
    raw_lock_type = lock_ok ? (PyTypeObject *)lt : NULL;
    raw_rlock_type = rlock_ok ? (PyTypeObject *)rt : NULL;
    if (!lock_ok)
        Py_DECREF(lt);
    if (!rlock_ok)
        Py_DECREF(rt);
#endif
    return 0;
}

/* raw_locks() -> (lock, rlock): whether each inner type is driven directly. */
static PyObject *
raw_locks(PyObject *mod, PyObject *Py_UNUSED(ignored))
{
    return Py_BuildValue("(OO)", raw_lock_type ? Py_True : Py_False,
                         raw_rlock_type ? Py_True : Py_False);
}

/* The inner lock's acquire (with `arg`, or none when NULL), release, ... */
static PyObject *
inner_call(LockCore *self, PyObject *name, PyObject *arg)
{
    if (self->lock == NULL) {
        PyErr_SetString(PyExc_AttributeError, "traced lock has no inner lock");
        return NULL;
    }
    PyObject *args[2] = {self->lock, arg};
    size_t n = arg != NULL ? 2 : 1;
    PyObject *descr = inner_method(Py_TYPE(self->lock), name);
    if (descr != NULL)
        return PyObject_Vectorcall(descr, args, n, NULL);
    return PyObject_VectorcallMethod(name, args, n | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
}

/* The inner lock's acquire(False). */
static inline PyObject *
inner_try(LockCore *self)
{
    if (self->lock != NULL) {
        int r = raw_try(self->lock);
        if (r >= 0)
            return Py_NewRef(r ? Py_True : Py_False);
    }
    return inner_call(self, s_acquire, Py_False);
}

/* The inner lock's release(). */
static inline PyObject *
inner_release(LockCore *self)
{
    if (self->lock != NULL && raw_release(self->lock) == 1)
        Py_RETURN_NONE;
    return inner_call(self, s_release, NULL);
}

/* A waiting acquire of `self` at `site` ended by the exception raised now (a
 * signal handler's): a ``cancel`` through the Python _ls_interrupted; the
 * exception stays raised. */
static void
note_interrupted(LockCore *self, PyObject *site)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    PyObject *r = value == NULL ? NULL
        : PyObject_CallMethodObjArgs((PyObject *)self, s_ls_interrupted, site, value, NULL);
    if (r == NULL)
        PyErr_Clear();
    Py_XDECREF(r);
    PyErr_Restore(type, value, tb);
}

/* The argument-less acquire found the lock taken: as _LockBase._ls_acquire_slow
 * (recorder/_threading.py) for blocking=True, timeout=-1: one more try, else a
 * ``wait`` event, the blocking acquire (the inner lock releases the GIL), and
 * ``acquire``; a wait ended by an exception (a signal handler's) is a ``cancel``
 * (through the Python _ls_interrupted). */
static PyObject *
acquire_contended(LockCore *self)
{
    PyObject *got = inner_try(self);
    if (got == NULL)
        return NULL;
    int on = core_dict != NULL && recording_on();
    if (!on && PyErr_Occurred() && swallow() < 0) {
        Py_DECREF(got);
        return NULL;
    }
    if (got == Py_True) {
        if (on && record(0, op_acquire, (PyObject *)self, 1, self, NULL) < 0) {
            Py_DECREF(got);
            return NULL;
        }
        return got;
    }
    Py_DECREF(got);
    if (!on)
        return inner_call(self, s_acquire, NULL);
    PyObject *site = caller_site(self);
    if (site == NULL) {
        if (swallow() < 0)
            return NULL;
        site = PyLong_FromLong(0);
        if (site == NULL && swallow() < 0)
            return NULL;
    }
    if (site != NULL && record(0, op_wait, (PyObject *)self, 0, NULL, site) < 0) {
        Py_DECREF(site);
        return NULL;
    }
    got = inner_call(self, s_acquire, NULL);
    if (got == NULL) {
        if (site != NULL) {
            note_interrupted(self, site);
            Py_DECREF(site);
        }
        return NULL;
    }
    if (site != NULL) {
        int rc = record(0, got == Py_True ? op_acquire : op_timeout, (PyObject *)self, 0,
                        NULL, site);
        Py_DECREF(site);
        if (rc < 0) {
            Py_DECREF(got);
            return NULL;
        }
    }
    return got;
}

/* The uncontended, argument-less acquire: the ``with lock:`` path. */
static PyObject *
acquire_noargs(LockCore *self)
{
    PyObject *got = inner_try(self);
    if (got == NULL)
        return NULL;
    if (got == Py_False) {
        Py_DECREF(got);
        return acquire_contended(self);
    }
    if (got != Py_True) {
        Py_DECREF(got);
        /* An unusual inner lock: the Python slow path waits and records
         * wait/acquire; frame 2 from its site_id is our caller. */
        PyObject *args[4] = {(PyObject *)self, Py_True, NULL, int_two};
        PyObject *minus_one = PyLong_FromLong(-1);
        if (minus_one == NULL)
            return NULL;
        args[2] = minus_one;
        PyObject *r = PyObject_VectorcallMethod(s_ls_acquire_slow, args, 4, NULL);
        Py_DECREF(minus_one);
        return r;
    }
    if (core_dict != NULL && recording_on()) {
        if (!rlock_inner_level_of(self, 1)
                && record(0, op_acquire, (PyObject *)self, 1, self, NULL) < 0) {
            Py_DECREF(got);
            return NULL;
        }
    }
    else if (PyErr_Occurred() && swallow() < 0) {
        Py_DECREF(got);
        return NULL;
    }
    return got;
}

static PyObject *
LockCore_acquire(LockCore *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (nargs == 0 && kwnames == NULL)
        return acquire_noargs(self);
    /* Arguments: the Python acquire (same semantics and errors as the original). */
    PyObject *stack[4];
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    if (nargs + nkw > 3) {
        PyErr_SetString(PyExc_TypeError, "acquire() takes at most 2 arguments");
        return NULL;
    }
    stack[0] = (PyObject *)self;
    for (Py_ssize_t i = 0; i < nargs + nkw; i++)
        stack[i + 1] = args[i];
    return PyObject_VectorcallMethod(s_ls_acquire, stack, nargs + 1, kwnames);
}

static PyObject *
LockCore_enter(LockCore *self, PyObject *Py_UNUSED(ignored))
{
    return acquire_noargs(self);
}

static PyObject *
release_impl(LockCore *self)
{
    if (core_dict == NULL || !recording_on()) {
        if (PyErr_Occurred() && swallow() < 0)
            return NULL;
        return inner_release(self);
    }
    long long ts = now_ll();
    if (ts == 0 && swallow() < 0)
        return NULL;
    PyObject *r = inner_release(self);
    if (r == NULL || ts == 0 || rlock_inner_level_of(self, 0))
        return r;
    int rc = record(ts, op_release, (PyObject *)self, 0, NULL, NULL);
    if (rc < 0) {
        Py_DECREF(r);
        return NULL;
    }
    return r;
}

static PyObject *
LockCore_release(LockCore *self, PyObject *Py_UNUSED(ignored))
{
    return release_impl(self);
}

static PyObject *
LockCore_exit(LockCore *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)args;
    (void)nargs;
    PyObject *r = release_impl(self);
    if (r == NULL)
        return NULL;
    Py_DECREF(r);
    Py_RETURN_NONE;
}

/* Condition's ownership probe of a traced Lock (recorder/_threading.py
 * Lock._py_is_owned): a try of the inner lock, never recorded. */
static PyObject *
LockCore_is_owned(LockCore *self, PyObject *Py_UNUSED(ignored))
{
    if (self->lock == NULL)
        return inner_call(self, s_locked, NULL);
#ifdef LS_RAW_LOCKS
    if (Py_TYPE(self->lock) == raw_lock_type)  /* (its locked(), read directly) */
        return Py_NewRef(((RawLock *)self->lock)->locked ? Py_True : Py_False);
#endif
    /* The inner lock's locked(): what the original probe (a try-acquire that
     * fails, or succeeds and is undone) tells, in one argument-less call. */
    PyObject *args[1] = {self->lock};
    return PyObject_VectorcallMethod(s_locked, args, 1 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
}

/* A traced RLock's _is_owned: its inner RLock's (Condition.notify and wait, and
 * the recorder's signal, ask it every time). */
static PyObject *
LockCore_inner_is_owned(LockCore *self, PyObject *Py_UNUSED(ignored))
{
#ifdef LS_RAW_LOCKS
    if (self->lock != NULL && Py_TYPE(self->lock) == raw_rlock_type) {
        RawRLock *r = (RawRLock *)self->lock;
        return Py_NewRef(r->rlock_count > 0 && r->rlock_owner == PyThread_get_thread_ident()
                         ? Py_True : Py_False);
    }
#endif
    return inner_call(self, s_is_owned, NULL);
}

/* The traced RLock's __init__ in C (recorder/_threading.py sets RLock.__init__ to
 * it): the inner RLock made and the lock defined as init_lock does, without the
 * Python frame of a constructor a Future's condition runs each.  Arguments (an
 * error, deprecated on 3.13) go to the Python __init__. */
static PyObject *ctor_crlock, *ctor_py_rlock_init, *s_type_rlock, *s_ls_define;

/* A traced lock made by a C constructor (no frame of its own): its inner lock
 * set and the lock defined as init_lock does, else by _ls_define's Python path
 * (its creator is _getframe(1) there).  0, or -1 with an error. */
static int
init_lock_from_c(PyObject *lock, PyObject *inner, PyObject *type, PyObject *reentrant)
{
    PyObject *r = init_lock_impl(NULL, lock, inner, type, reentrant, 1);
    if (r == Py_False) {
        Py_DECREF(r);
        PyObject *margs[4] = {lock, type, reentrant, int_one};
        r = PyObject_VectorcallMethod(s_ls_define, margs, 4 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    }
    Py_XDECREF(r);
    return r != NULL ? 0 : -1;
}

static PyObject *
LockCore_rlock_init(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (ctor_crlock == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "traced RLock without its constructors");
        return NULL;
    }
    if (nargs > 0 || kwnames != NULL)
        return call_with_self(ctor_py_rlock_init, self, args, nargs, kwnames);
    PyObject *inner = PyObject_CallNoArgs(ctor_crlock);
    int rc = inner != NULL ? init_lock_from_c(self, inner, s_type_rlock, Py_True) : -1;
    Py_XDECREF(inner);
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* threading.Lock() before 3.13 (LockFactory below):
 * _thread.allocate_lock()'s traced Lock, made and defined without the Python
 * frame of a constructor (a Thread's _started Event makes one each). */
static PyObject *ctor_lock_type, *ctor_allocate_lock, *s_type_lock;

static PyObject *
lock_factory_call(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (ctor_lock_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "traced Lock without its constructors");
        return NULL;
    }
    if (nargs > 0 || kwnames != NULL || thread_internals_make(1))  /* (its own errors) */
        return PyObject_Vectorcall(ctor_allocate_lock, args, nargs, kwnames);
    PyTypeObject *type = (PyTypeObject *)ctor_lock_type;
    PyObject *lock = type->tp_alloc(type, 0);
    PyObject *inner = lock != NULL ? PyObject_CallNoArgs(ctor_allocate_lock) : NULL;
    int rc = inner != NULL ? init_lock_from_c(lock, inner, s_type_lock, Py_False) : -1;
    Py_XDECREF(inner);
    if (rc < 0) {
        Py_XDECREF(lock);
        return NULL;
    }
    return lock;
}

/* Lock.__new__ from 3.13, where threading.Lock is the traced type itself: the
 * lock made, its inner lock set and defined as lock_factory_call does (one call,
 * no frame; Lock.__init__ is then object's).  Arguments: the Python __new__
 * (lock_new's first argument is the class, as a __new__'s). */
static PyObject *ctor_py_lock_new;

static PyObject *
lock_new(PyObject *mod, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (ctor_py_lock_new == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "traced Lock without its constructors");
        return NULL;
    }
    if (nargs != 1 || kwnames != NULL || args[0] != ctor_lock_type)
        return PyObject_Vectorcall(ctor_py_lock_new, args, nargs, kwnames);
    return lock_factory_call(NULL, NULL, 0, NULL);
}

static PyObject *
set_py_lock_new(PyObject *mod, PyObject *py_new)
{
    Py_XSETREF(ctor_py_lock_new, Py_NewRef(py_new));
    Py_RETURN_NONE;
}


/* LockFactory(original, reduce_value): threading.Lock before 3.13, called with
 * vectorcall.  An instance of a Python class with __call__ cost every Lock()
 * a type lookup and a call through slot_tp_call (~450 instructions: a Thread
 * makes one for its _started Event).  It presents itself as `original`
 * (_thread.allocate_lock): its name, qualname, module, doc and repr, and it
 * pickles as `reduce_value` says (a reference to the original). */
typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *like;
    PyObject *reduce;
} LockFactory;

static PyObject *
LockFactory_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf,
                       PyObject *kwnames)
{
    return lock_factory_call(self, args, PyVectorcall_NARGS(nargsf), kwnames);
}

static PyObject *
LockFactory_new(PyTypeObject *tp, PyObject *args, PyObject *kw)
{
    PyObject *like, *reduce;
    if (kw != NULL || !PyArg_ParseTuple(args, "OO:LockFactory", &like, &reduce))
        return NULL;
    LockFactory *f = (LockFactory *)tp->tp_alloc(tp, 0);
    if (f == NULL)
        return NULL;
    f->vectorcall = LockFactory_vectorcall;
    f->like = Py_NewRef(like);
    f->reduce = Py_NewRef(reduce);
    return (PyObject *)f;
}

static void
LockFactory_dealloc(LockFactory *f)
{
    Py_XDECREF(f->like);
    Py_XDECREF(f->reduce);
    Py_TYPE(f)->tp_free((PyObject *)f);
}

static PyObject *
LockFactory_repr(LockFactory *f)
{
    return PyObject_Repr(f->like);
}

/* (what describes the original is read from it: its name, module, doc, ...) */
static PyObject *
LockFactory_getattro(LockFactory *f, PyObject *name)
{
    if (PyUnicode_Check(name) && PyUnicode_GET_LENGTH(name) > 4
            && PyUnicode_READ_CHAR(name, 0) == '_' && PyUnicode_READ_CHAR(name, 1) == '_') {
        static const char *const own[] = {"__name__", "__qualname__", "__module__", "__doc__",
                                          "__text_signature__"};
        for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
            if (PyUnicode_CompareWithASCIIString(name, own[i]) == 0)
                return PyObject_GetAttr(f->like, name);
    }
    return PyObject_GenericGetAttr((PyObject *)f, name);
}

static PyObject *
LockFactory_reduce(LockFactory *f, PyObject *Py_UNUSED(ignored))
{
    return Py_NewRef(f->reduce);
}

static PyMethodDef LockFactory_methods[] = {
    {"__reduce__", (PyCFunction)LockFactory_reduce, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject LockFactory_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "recorder._speedups.LockFactory",
    .tp_basicsize = sizeof(LockFactory),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_vectorcall_offset = offsetof(LockFactory, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_dealloc = (destructor)LockFactory_dealloc,
    .tp_repr = (reprfunc)LockFactory_repr,
    .tp_getattro = (getattrofunc)LockFactory_getattro,
    .tp_methods = LockFactory_methods,
    .tp_new = LockFactory_new,
};

/* set_constructors(orig_condition, traced_rlock, condition_rest, py_condition_init,
 * crlock, py_rlock_init, lock_type, allocate_lock): what CondHooks_new/init,
 * LockCore_rlock_init and lock_factory_call call. */
static PyObject *
set_constructors(PyObject *mod, PyObject *args)
{
    PyObject *cond, *rlock, *rest, *py_cond_init, *crlock, *py_rlock_init, *lock, *allocate;
    if (!PyArg_ParseTuple(args, "OOOOOOO!O", &cond, &rlock, &rest, &py_cond_init, &crlock,
                          &py_rlock_init, &PyType_Type, &lock, &allocate))
        return NULL;
    if (!PyType_IsSubtype((PyTypeObject *)lock, &LockCore_Type)) {
        PyErr_SetString(PyExc_TypeError, "set_constructors: the traced Lock type");
        return NULL;
    }
    PyObject *init = PyObject_GetAttrString(cond, "__init__");
    if (init == NULL)
        return NULL;
    PyObject **slots[] = {&ctor_lock_type, &ctor_allocate_lock, &ctor_orig_condition_init,
                          &ctor_orig_condition, &ctor_traced_rlock, &ctor_condition_rest,
                          &ctor_py_condition_init, &ctor_crlock, &ctor_py_rlock_init};
    PyObject *values[] = {lock, allocate, init, cond, rlock, rest, py_cond_init, crlock,
                          py_rlock_init};
    hold_all(slots, values, 9);
    Py_DECREF(init);
    Py_RETURN_NONE;
}

/* The traced RLock's _release_save and _acquire_restore (Condition.wait calls
 * them), as recorder/_threading.py's RLock: a ``release`` per level the inner
 * RLock gives up, stamped before it does; then, taking it back, a ``wait`` when
 * another thread holds it, and an ``acquire`` per level, at the caller of the
 * wait.  Their Python frames cost each traced wait about 5k instructions. */
static PyObject *s_release_save, *s_acquire_restore;

/* The levels a saved RLock state holds (state[0] of a tuple, else 1); 0 when
 * that is not an int (no events, as the Python loop that fails). */
static long
saved_levels(PyObject *state)
{
    if (!PyTuple_Check(state))
        return 1;
    long n = PyTuple_GET_SIZE(state) > 0 ? PyLong_AsLong(PyTuple_GET_ITEM(state, 0)) : 0;
    if (n == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    return n;
}

/* How many of `n` levels given up or taken back at once are recorded: the
 * outermost only where the inner ones are left out (see rlock_levels_left_out),
 * else all. */
static long
rlock_outer_only(LockCore *self, long n)
{
    return n > 1 && rlock_levels_left_out(self) ? 1 : n;
}

static PyObject *
LockCore_release_save(LockCore *self, PyObject *Py_UNUSED(ignored))
{
    int on = core_dict != NULL && recording_on();
    if (!on && PyErr_Occurred() && swallow() < 0)
        return NULL;
    long long ts = on ? mono_now() : 0;
    PyObject *state = inner_call(self, s_release_save, NULL);
    if (state == NULL || !on)
        return state;
    long n = rlock_outer_only(self, saved_levels(state));
    for (long i = 0; i < n; i++)
        if (record(ts, op_release, (PyObject *)self, 0, self, NULL) < 0) {
            Py_DECREF(state);
            return NULL;
        }
    return state;
}

static PyObject *
LockCore_acquire_restore(LockCore *self, PyObject *state)
{
    int on = core_dict != NULL && recording_on();
    if (!on && PyErr_Occurred() && swallow() < 0)
        return NULL;
    if (!on)
        return inner_call(self, s_acquire_restore, state);
    /* (our callers have no frame: the first frame outside the libraries from
     * here is the wait's caller, as site_id(3) from the Python method) */
    PyObject *site = caller_site(self);
    if (site == NULL) {
        if (swallow() < 0)
            return NULL;
        return inner_call(self, s_acquire_restore, state);
    }
    PyObject *got = inner_try(self);  /* (the inner RLock offers no try-restore) */
    int is_free = got == Py_True;
    Py_XDECREF(got);
    if (got == NULL || (is_free && (got = inner_release(self)) == NULL)) {
        Py_DECREF(site);
        return NULL;
    }
    if (is_free)
        Py_DECREF(got);
    else if (record(0, op_wait, (PyObject *)self, 0, NULL, site) < 0) {
        Py_DECREF(site);
        return NULL;
    }
    PyObject *r = inner_call(self, s_acquire_restore, state);
    if (r == NULL) {
        if (!is_free)  /* (as acquire_contended) */
            note_interrupted(self, site);
        Py_DECREF(site);
        return NULL;
    }
    long long ts = mono_now();
    long n = rlock_outer_only(self, saved_levels(state));
    for (long i = 0; i < n; i++)
        if (record(ts, op_acquire, (PyObject *)self, 0, NULL, site) < 0) {
            Py_DECREF(site);
            Py_DECREF(r);
            return NULL;
        }
    Py_DECREF(site);
    return r;
}

static PyMethodDef LockCore_methods[] = {
    {"_rlock_release_save", (PyCFunction)LockCore_release_save, METH_NOARGS,
     "The traced RLock's _release_save (Condition.wait's)."},
    {"_rlock_acquire_restore", (PyCFunction)LockCore_acquire_restore, METH_O,
     "The traced RLock's _acquire_restore (Condition.wait's)."},
    {"_rlock_init", (PyCFunction)(void (*)(void))LockCore_rlock_init,
     METH_FASTCALL | METH_KEYWORDS, "The traced RLock's __init__."},
    {"_probe_owned", (PyCFunction)LockCore_is_owned, METH_NOARGS,
     "True when the (non-reentrant) lock is held: Condition's _is_owned."},
    {"_inner_is_owned", (PyCFunction)LockCore_inner_is_owned, METH_NOARGS,
     "The inner (reentrant) lock's _is_owned(): Condition's _is_owned."},
    {"acquire", (PyCFunction)(void (*)(void))LockCore_acquire, METH_FASTCALL | METH_KEYWORDS,
     "acquire(blocking=True, timeout=-1) -> bool"},
    {"__enter__", (PyCFunction)LockCore_enter, METH_NOARGS, "Acquire the lock."},
    {"release", (PyCFunction)LockCore_release, METH_NOARGS, "Release the lock."},
    {"__exit__", (PyCFunction)(void (*)(void))LockCore_exit, METH_FASTCALL, "Release the lock."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef LockCore_members[] = {
    {"_lock", T_OBJECT_EX, offsetof(LockCore, lock), 0, NULL},
    {"_ls_ref", T_OBJECT_EX, offsetof(LockCore, ref), 0, NULL},
    {NULL, 0, 0, 0, NULL},
};

/* lock._ls_def: the definition set on it, else its Ref's (made now if lazy). */
static PyObject *
LockCore_get_def(LockCore *self, void *Py_UNUSED(closure))
{
    PyObject *d = self->def;
    if (d == NULL && self->ref != NULL && Py_TYPE(self->ref) == &Ref_Type)
        d = ref_def((Ref *)self->ref);
    if (d == NULL && !PyErr_Occurred())
        PyErr_SetString(PyExc_AttributeError, "_ls_def");
    return Py_XNewRef(d);
}

static int
LockCore_set_def(LockCore *self, PyObject *value, void *Py_UNUSED(closure))
{
    if (value == NULL && self->def == NULL) {
        PyErr_SetString(PyExc_AttributeError, "_ls_def");
        return -1;
    }
    Py_XSETREF(self->def, Py_XNewRef(value));
    return 0;
}

static PyGetSetDef LockCore_getset[] = {
    {"_ls_def", (getter)LockCore_get_def, (setter)LockCore_set_def, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject LockCore_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "recorder._speedups.LockCore",
    .tp_basicsize = sizeof(LockCore),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The hot path of a traced threading lock (see recorder/_threading.py).",
    .tp_traverse = (traverseproc)LockCore_traverse,
    .tp_clear = (inquiry)LockCore_clear,
    .tp_dealloc = (destructor)LockCore_dealloc,
    .tp_methods = LockCore_methods,
    .tp_members = LockCore_members,
    .tp_getset = LockCore_getset,
    .tp_new = PyType_GenericNew,
};

/* ----------------------------------------------------------------- writer */

typedef struct {
    char *data;
    size_t len, cap;
    unsigned long flushes;  /* times its text went to the bytearray or Python code ran */
} Out;

/* One text buffer kept from call to call (no more than OUT_KEEP bytes of it):
 * each drain of the writer, each dumps() began with a new 64 KiB buffer and
 * grew it by doubling, copying what it held each time (a drain of a few hundred
 * KB: every byte copied once more).  Taken with the GIL held by out_begin, given
 * back by out_release; a call made while it is taken (Python code that a
 * definition runs may encode too) gets a buffer of its own. */
#define OUT_KEEP (1 << 20)
static char *out_spare;
static size_t out_spare_cap;

static inline void
out_begin(Out *o)
{
    *o = (Out){out_spare, 0, out_spare_cap, 0};
    out_spare = NULL;
    out_spare_cap = 0;
}

static void
out_release(Out *o)
{
    if (o->data != NULL && out_spare == NULL && o->cap <= OUT_KEEP) {
        out_spare = o->data;
        out_spare_cap = o->cap;
    }
    else {
        PyMem_Free(o->data);
    }
    *o = (Out){NULL, 0, 0, 0};
}

static int
out_reserve(Out *o, size_t more)
{
    if (o->len + more <= o->cap)
        return 0;
    size_t cap = o->cap ? o->cap : 1 << 16;
    while (cap < o->len + more)
        cap *= 2;
    char *d = PyMem_Realloc(o->data, cap);
    if (d == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    o->data = d;
    o->cap = cap;
    return 0;
}

static inline void
out_str(Out *o, const char *s, size_t n)
{
    memcpy(o->data + o->len, s, n);
    o->len += n;
}

static const char DIGIT_PAIRS[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

/* Two digits (d < 100) at p, as one 2-byte copy. */
static inline void
put2(char *p, unsigned d)
{
    memcpy(p, DIGIT_PAIRS + 2 * d, 2);
}

static const unsigned long long POW10[20] = {
    1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL,
    100000000ULL, 1000000000ULL, 10000000000ULL, 100000000000ULL, 1000000000000ULL,
    10000000000000ULL, 100000000000000ULL, 1000000000000000ULL,
    10000000000000000ULL, 100000000000000000ULL, 1000000000000000000ULL,
    10000000000000000000ULL};

/* How many decimal digits u has: from its bit length (log10(2) ~ 1233 / 4096),
 * then one compare. */
static inline int
digits_of(unsigned long long u)
{
    int t = ((64 - __builtin_clzll(u | 1)) * 1233) >> 12;
    return t + (u >= POW10[t]);
}

/* Decimal digits of v, written in place from the last, two at a time (in 32-bit
 * arithmetic once the value fits: most ids do from the start). */
static inline void
out_int(Out *o, long long v)
{
    unsigned long long u = v < 0 ? (unsigned long long)(-(v + 1)) + 1 : (unsigned long long)v;
    if (v < 0)
        o->data[o->len++] = '-';
    if (u < 100) {
        if (u < 10) {
            o->data[o->len++] = (char)('0' + u);
        }
        else {
            put2(o->data + o->len, (unsigned)u);
            o->len += 2;
        }
        return;
    }
    int n = digits_of(u);
    char *end = o->data + o->len + n;
    o->len += (size_t)n;
    while (u > 0xffffffffULL) {
        unsigned long long q = u / 100;
        end -= 2;
        put2(end, (unsigned)(u - q * 100));
        u = q;
    }
    unsigned w = (unsigned)u;
    while (w >= 100) {
        unsigned q = w / 100;
        end -= 2;
        put2(end, w - q * 100);
        w = q;
    }
    if (w >= 10)
        put2(end - 2, w);
    else
        end[-1] = (char)('0' + w);
}

/* A time stamp (ns, 0 or more): as out_int, but the digits above the last 8,
 * which events of one batch mostly share, are copied from the previous stamp's
 * (*hi, *hi_text, *hi_len: the cache, kept by the caller; hi_text has 16 bytes,
 * copied whole: `o` needs 24 bytes of room past its text). */
static inline void
out_ts(Out *o, long long t, long long *hi, char *hi_text, int *hi_len)
{
    if (t < 100000000LL) {
        out_int(o, t);
        return;
    }
    long long h = t / 100000000LL;
    unsigned lo = (unsigned)(t - h * 100000000LL);
    if (h != *hi || *hi_len == 0) {
        Out tmp = {hi_text, 0, 16, 0};
        out_int(&tmp, h);  /* (h < 10^11: 11 digits at most) */
        *hi = h;
        *hi_len = (int)tmp.len;
    }
    char *p = o->data + o->len;
    memcpy(p, hi_text, 16);
    p += *hi_len;
    o->len += (size_t)*hi_len + 8;
    unsigned a = lo / 10000, b = lo - a * 10000;
    unsigned a1 = a / 100, b1 = b / 100;
    put2(p, a1);
    put2(p + 2, a - a1 * 100);
    put2(p + 4, b1);
    put2(p + 6, b - b1 * 100);
}

#define LIT(o, s) out_str(o, s, sizeof(s) - 1)

/* ------------------------------------------------------------ dumps()
 *
 * A trace record as one JSON line, what recorder._text.dumps wrote with orjson:
 * importing orjson (and the dataclasses, inspect, uuid, datetime and json it
 * imports) was most of what starting the recorder cost, about 90 M instructions
 * in every recorded process.  str (and subclasses), int, float, bool, None,
 * dicts, lists and tuples are written as JSON; anything else as its str(), as
 * orjson's default=str did.  Floats are written as repr() writes them (orjson:
 * shortest form, e.g. 0.00001 for 1e-05; both are the same JSON number), NaN
 * and infinities as null.  A str that is not valid Unicode (a lone surrogate)
 * makes dumps() return None: the caller cleans the record (see _text). */

#define DUMPS_DEPTH 32

static int dumps_value(Out *o, PyObject *v, int depth);

/* Escape and append the UTF-8 of str `v` in quotes: 0 written, 1 not valid
 * Unicode (no error set), -1 error. */
static int
dumps_str(Out *o, PyObject *v)
{
    Py_ssize_t n;
    const char *c = PyUnicode_AsUTF8AndSize(v, &n);
    if (c == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError))
            return -1;
        PyErr_Clear();
        return 1;
    }
    if (out_reserve(o, (size_t)n * 6 + 2) < 0)
        return -1;
    char *d = o->data + o->len;
    *d++ = '"';
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)c[i];
        if (ch >= 0x20 && ch != '"' && ch != '\\') {
            *d++ = (char)ch;
            continue;
        }
        *d++ = '\\';
        switch (ch) {
        case '"': *d++ = '"'; break;
        case '\\': *d++ = '\\'; break;
        case '\n': *d++ = 'n'; break;
        case '\r': *d++ = 'r'; break;
        case '\t': *d++ = 't'; break;
        case '\b': *d++ = 'b'; break;
        case '\f': *d++ = 'f'; break;
        default:
            *d++ = 'u';
            *d++ = '0';
            *d++ = '0';
            *d++ = "0123456789abcdef"[ch >> 4];
            *d++ = "0123456789abcdef"[ch & 15];
        }
    }
    *d++ = '"';
    o->len = (size_t)(d - o->data);
    return 0;
}

/* Append ASCII text (an int's or float's repr). */
static int
dumps_ascii(Out *o, const char *t, size_t n)
{
    if (out_reserve(o, n) < 0)
        return -1;
    out_str(o, t, n);
    return 0;
}

/* str(v), as a JSON string (0, 1 or -1 as dumps_str). */
static int
dumps_as_str(Out *o, PyObject *v)
{
    PyObject *t = PyObject_Str(v);
    if (t == NULL)
        return -1;
    int r = dumps_str(o, t);
    Py_DECREF(t);
    return r;
}

static int
dumps_value(Out *o, PyObject *v, int depth)
{
    if (depth > DUMPS_DEPTH)
        return dumps_as_str(o, v);
    if (v == Py_None)
        return dumps_ascii(o, "null", 4);
    if (v == Py_True)
        return dumps_ascii(o, "true", 4);
    if (v == Py_False)
        return dumps_ascii(o, "false", 5);
    if (PyUnicode_Check(v))
        return dumps_str(o, v);
    if (PyLong_Check(v)) {
        int overflow;
        long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (x == -1 && PyErr_Occurred())
            return -1;
        if (!overflow) {
            if (out_reserve(o, 24) < 0)
                return -1;
            out_int(o, x);
            return 0;
        }
        PyObject *t = PyLong_Type.tp_repr(v);
        if (t == NULL)
            return -1;
        Py_ssize_t n;
        const char *c = PyUnicode_AsUTF8AndSize(t, &n);
        int r = c == NULL ? -1 : dumps_ascii(o, c, (size_t)n);
        Py_DECREF(t);
        return r;
    }
    if (PyFloat_Check(v)) {
        double x = PyFloat_AS_DOUBLE(v);
        if (!isfinite(x))
            return dumps_ascii(o, "null", 4);
        char *t = PyOS_double_to_string(x, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
        if (t == NULL)
            return -1;
        int r = dumps_ascii(o, t, strlen(t));
        PyMem_Free(t);
        return r;
    }
    if (PyDict_Check(v)) {
        if (dumps_ascii(o, "{", 1) < 0)
            return -1;
        Py_ssize_t pos = 0;
        PyObject *key, *item;
        int first = 1, r = 0;
        Py_INCREF(v);  /* (str() of a key or value may run code) */
        while (r == 0 && PyDict_Next(v, &pos, &key, &item)) {
            Py_INCREF(key);
            Py_INCREF(item);
            if (!first)
                r = dumps_ascii(o, ",", 1);
            first = 0;
            if (r == 0)
                r = PyUnicode_Check(key) ? dumps_str(o, key) : dumps_as_str(o, key);
            if (r == 0)
                r = dumps_ascii(o, ":", 1);
            if (r == 0)
                r = dumps_value(o, item, depth + 1);
            Py_DECREF(key);
            Py_DECREF(item);
        }
        Py_DECREF(v);
        return r != 0 ? r : dumps_ascii(o, "}", 1);
    }
    if (PyList_Check(v) || PyTuple_Check(v)) {
        PyObject *seq = PySequence_Tuple(v);  /* (a list may change under str()) */
        if (seq == NULL)
            return -1;
        int r = dumps_ascii(o, "[", 1);
        for (Py_ssize_t i = 0; r == 0 && i < PyTuple_GET_SIZE(seq); i++) {
            if (i)
                r = dumps_ascii(o, ",", 1);
            if (r == 0)
                r = dumps_value(o, PyTuple_GET_ITEM(seq, i), depth + 1);
        }
        Py_DECREF(seq);
        return r != 0 ? r : dumps_ascii(o, "]", 1);
    }
    return dumps_as_str(o, v);
}

/* dumps(record) -> bytes (one JSON line, with its newline), or None when a str
 * in it is not valid Unicode. */
static PyObject *
dumps(PyObject *mod, PyObject *record)
{
    Out o;
    out_begin(&o);
    int r = dumps_value(&o, record, 0);
    if (r == 0)
        r = dumps_ascii(&o, "\n", 1);
    PyObject *res = r < 0 ? NULL
        : r > 0 ? Py_NewRef(Py_None)
        : PyBytes_FromStringAndSize(o.data, (Py_ssize_t)o.len);
    out_release(&o);
    return res;
}

/* An int as a long long (-1 with an error when it does not fit): without going
 * through _PyLong_AsByteArray as PyLong_AsLongLong does for every int of more
 * than one digit (time stamps), 190 instructions each. */
static inline long long
as_ll(PyObject *v)
{
    int overflow;
    long long r = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (overflow) {
        PyErr_SetString(PyExc_OverflowError, "int too big for an event field");
        return -1;
    }
    return r;
}

/* The int id of a written definition, or -1 (not written / not an int / error). */
static long long
written_id(PyObject *obj, PyObject *written)
{
    PyObject *oid = Py_TYPE(obj) == &Ref_Type && ((Ref *)obj)->id != NULL
        ? Py_NewRef(((Ref *)obj)->id) : PyObject_GetAttr(obj, s_ls_id);
    if (oid == NULL) {
        PyErr_Clear();
        return -1;
    }
    long long v = -1;
    if (PyLong_CheckExact(oid)) {
        int in = PySet_Contains(written, oid);
        if (in == 1) {
            v = as_ll(oid);
            if (v == -1 && PyErr_Occurred())
                PyErr_Clear();
        }
        else if (in < 0) {
            PyErr_Clear();
        }
    }
    Py_DECREF(oid);
    return v;
}

/* Strings found plain lately, by address (direct-mapped).  Each is held, so an
 * address here stays that string's.  The definitions of locks made per item
 * repeat the same type, expr and lib strings: scanned once, not each time. */
#define PLAIN_CACHE 256
static PyObject *plain_seen[PLAIN_CACHE];

/* A str that JSON needs no escape for (printable ASCII but " and \\): its
 * length, else -1. */
static Py_ssize_t
plain_len(PyObject *s)
{
    if (!PyUnicode_CheckExact(s) || !PyUnicode_IS_ASCII(s))
        return -1;
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    size_t slot = ((uintptr_t)s >> 4) & (PLAIN_CACHE - 1);
    /* (interned: the keys of every definition and event, scanned twice each) */
    int cached = n >= 8 || PyUnicode_CHECK_INTERNED(s);
    if (cached && plain_seen[slot] == s)
        return n;
    const unsigned char *c = PyUnicode_1BYTE_DATA(s);
    Py_ssize_t i = 0;
    /* (eight characters at a time: a thread's name in each thread record; the
     * text is ASCII, every byte below 0x80, so these tests are exact) */
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, c + i, 8);
        uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\'), d = w ^ (ones * 0x7f);
        if (((w - ones * 0x20) | (q - ones) | (b - ones) | (d - ones)) & highs)
            return -1;
    }
    for (; i < n; i++)
        if (c[i] < 0x20 || c[i] == '"' || c[i] == '\\' || c[i] == 0x7f)
            return -1;
    if (cached) {
        PyObject *old = plain_seen[slot];
        plain_seen[slot] = Py_NewRef(s);
        Py_XDECREF(old);  /* (a str: its dealloc runs no Python code) */
    }
    return n;
}

/* An exact int's value when it has at most two digits (*r; returns 1), read
 * in place: a definition's ids, sites and time stamp, 12 fields each written
 * twice over (plain_size, out_extra).  0: ask PyLong_AsLongLongAndOverflow. */
static inline int
small_ll(PyObject *v, long long *r)
{
#if PY_VERSION_HEX >= 0x030C0000
    if (!PyUnstable_Long_IsCompact((PyLongObject *)v))
        return 0;
    *r = (long long)PyUnstable_Long_CompactValue((PyLongObject *)v);
    return 1;
#else
    const digit *d = ((PyLongObject *)v)->ob_digit;
    switch (Py_SIZE(v)) {
    case 0: *r = 0; return 1;
    case 1: *r = (long long)d[0]; return 1;
    case -1: *r = -(long long)d[0]; return 1;
    case 2: *r = (long long)d[0] | ((long long)d[1] << PyLong_SHIFT); return 1;
    case -2: *r = -((long long)d[0] | ((long long)d[1] << PyLong_SHIFT)); return 1;
    default: return 0;
    }
#endif
}

/* A ``name`` event has a record of its own (see Sink._encode). */
static inline int
is_name_op(PyObject *op)
{
    /* (s_name is interned: another interned str is not "name") */
    return op == s_name || (PyUnicode_Check(op) && !PyUnicode_CHECK_INTERNED(op)
                            && PyUnicode_CompareWithASCIIString(op, "name") == 0);
}

/* The keys the common fields use: an extra field never replaces one here. */
static PyObject *common_keys;

/* The bytes the extra fields of an event need (an upper bound, in *len), or -1
 * when one of them is not plain: a key that is a plain str other than the
 * common ones, a value that is None, a bool, an int that fits 64 bits or a
 * plain str.  (Floats go to the Python encoder, which formats them as orjson.) */
static int
plain_size(PyObject *extra, size_t *len, int any_key)
{
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    size_t total = 0;
    while (PyDict_Next(extra, &pos, &key, &value)) {
        Py_ssize_t kn = plain_len(key);
        if (kn < 0)
            return -1;
        int common = any_key ? 0 : PySet_Contains(common_keys, key);
        if (common != 0) {
            if (common < 0)
                PyErr_Clear();
            return -1;
        }
        total += (size_t)kn + 8;
        if (value == Py_None || PyBool_Check(value)) {
            total += 5;
        }
        else if (PyLong_CheckExact(value)) {
            long long v;
            if (!small_ll(value, &v)) {
                int overflow;
                (void)PyLong_AsLongLongAndOverflow(value, &overflow);
                if (overflow || PyErr_Occurred()) {
                    PyErr_Clear();
                    return -1;
                }
            }
            total += 24;
        }
        else {
            Py_ssize_t vn = plain_len(value);
            if (vn < 0)
                return -1;
            total += (size_t)vn + 2;
        }
    }
    *len = total;
    return 0;
}

static inline int
extra_size(PyObject *extra, size_t *len)
{
    return plain_size(extra, len, 0);
}

/* Append `,"key":value` for each extra field (checked by extra_size first). */
static void
out_extra(Out *o, PyObject *extra)
{
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    while (PyDict_Next(extra, &pos, &key, &value)) {
        LIT(o, ",\"");
        out_str(o, (const char *)PyUnicode_1BYTE_DATA(key), (size_t)PyUnicode_GET_LENGTH(key));
        LIT(o, "\":");
        if (value == Py_None) {
            LIT(o, "null");
        }
        else if (value == Py_True) {
            LIT(o, "true");
        }
        else if (value == Py_False) {
            LIT(o, "false");
        }
        else if (PyLong_CheckExact(value)) {
            long long v;
            out_int(o, small_ll(value, &v) ? v : PyLong_AsLongLong(value));
        }
        else {
            o->data[o->len++] = '"';
            out_str(o, (const char *)PyUnicode_1BYTE_DATA(value),
                    (size_t)PyUnicode_GET_LENGTH(value));
            o->data[o->len++] = '"';
        }
    }
}

/* Move the text of `o` to the end of `out`, which it continues at `*base`
 * (then past it): 0, or -1 with an error. */
static int
out_move(Out *o, PyObject *out, Py_ssize_t *base)
{
    if (!o->len)
        return 0;
    if (PyByteArray_Resize(out, *base + (Py_ssize_t)o->len) < 0)
        return -1;
    memcpy(PyByteArray_AS_STRING(out) + *base, o->data, o->len);
    *base += (Py_ssize_t)o->len;
    o->len = 0;
    return 0;
}

/* out_move, then free `o`'s buffer. */
static int
out_flush(Out *o, PyObject *out, Py_ssize_t base)
{
    int rc = out_move(o, out, &base);
    out_release(o);
    return rc;
}

/* Write the definition of `x` (an object, or a site id) through the writer's
 * `define(x, out)`, which appends it to `out` and returns its id: what `o` holds
 * goes to `out` first, so the definition comes before the event that names it.
 * Returns the id, or -1: with the error `define` raised still set (a bug of the
 * writer's, which must reach Sink.flush and stop the recording rather than leave
 * an object undefined), else with none (the Python encoder then goes on). */
static long long
define_from(PyObject *define, PyObject *x, Out *o, PyObject *out, Py_ssize_t *base)
{
    if (out_move(o, out, base) < 0) {
        PyErr_Clear();
        return -1;
    }
    o->flushes++;  /* (and Python code runs: what was checked may have changed) */
    PyObject *args[2] = {x, out};
    PyObject *r = PyObject_Vectorcall(define, args, 2, NULL);
    *base = PyByteArray_GET_SIZE(out);
    if (r == NULL)
        return -1;
    long long v = PyLong_Check(r) ? PyLong_AsLongLong(r) : -1;
    Py_DECREF(r);
    if (v == -1 && PyErr_Occurred())
        PyErr_Clear();
    return v;
}

/* Add `id` to `written` (a part's written ids): 1 when it was there already, 0
 * when added now (*oid is the id either way; a caller that then cannot write the
 * definition takes it out again), or -2 when it is not an int of 64 bits (Python
 * defines it; nothing added).  One lookup: the set's size tells whether it grew. */
static int
id_add(PyObject *id, PyObject *written, long long *oid)
{
    if (id == NULL || !PyLong_CheckExact(id))
        return -2;
    *oid = as_ll(id);
    Py_ssize_t size = PySet_GET_SIZE(written);
    if ((*oid == -1 && PyErr_Occurred()) || PySet_Add(written, id) < 0) {
        PyErr_Clear();
        return -2;
    }
    return PySet_GET_SIZE(written) == size;
}

/* ------------------------------------------------------------------- Job
 *
 * The segment of one pool work item (recorder/_jobs.py): its id and name, read by
 * the writer directly.  Not a GC object (it holds an int and a str): a
 * ThreadPoolExecutor with 30k work items queued kept 30k of them alive, each
 * counted by the cyclic GC as an allocation (with its definition dict), which
 * made the program's full collections more frequent. */
typedef struct {
    PyObject_HEAD
    PyObject *id;
    PyObject *name;
} Job;

static PyTypeObject Job_Type;

static PyObject *
Job_tp_new(PyTypeObject *tp, PyObject *args, PyObject *kw)
{
    PyObject *id, *name;
    if (kw != NULL || !PyArg_ParseTuple(args, "O!U:Job", &PyLong_Type, &id, &name))
        return NULL;
    Job *j = PyObject_New(Job, &Job_Type);
    if (j == NULL)
        return NULL;
    j->id = Py_NewRef(id);
    j->name = Py_NewRef(name);
    return (PyObject *)j;
}

static void
Job_dealloc(Job *j)
{
    Py_XDECREF(j->id);
    Py_XDECREF(j->name);
    PyObject_Free(j);
}

/* Its definition record, as Sink._write_def writes it. */
static PyObject *
Job_record(Job *j, PyObject *Py_UNUSED(ignored))
{
    return Py_BuildValue("{sssOsssO}", "k", "segment", "id", j->id, "kind", "job",
                         "name", j->name);
}

static PyObject *
Job_repr(Job *j)
{
    return PyUnicode_FromFormat("<lockscope job #%S %R>", j->id, j->name);
}

static PyMethodDef Job_methods[] = {
    {"_ls_record", (PyCFunction)Job_record, METH_NOARGS, "The definition record."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef Job_members[] = {
    {"_ls_id", T_OBJECT_EX, offsetof(Job, id), READONLY, NULL},
    {"name", T_OBJECT_EX, offsetof(Job, name), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject Job_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "recorder._speedups.Job",
    .tp_basicsize = sizeof(Job),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Job(id, name): the segment of one pool work item.",
    .tp_dealloc = (destructor)Job_dealloc,
    .tp_repr = (reprfunc)Job_repr,
    .tp_methods = Job_methods,
    .tp_members = Job_members,
    .tp_new = Job_tp_new,
};

/* Add each of `defs` to the module as a method any class can take (a method
 * descriptor of object, set on a traced class in Python): 0, or -1 with an error. */
static int
add_methods_for_any_class(PyObject *m, PyMethodDef *defs[], const char *const names[], int n)
{
    for (int i = 0; i < n; i++) {
        PyObject *d = PyDescr_NewMethod(&PyBaseObject_Type, defs[i]);
        if (d == NULL || PyModule_AddObject(m, names[i], d) < 0) {
            Py_XDECREF(d);
            return -1;
        }
    }
    return 0;
}

#include "_jobs_fast.c"
#include "_simplequeue_fast.c"
#include "_semaphore_fast.c"
#include "_event_fast.c"

/* Sink._define() of a Job: its id once its ``segment`` record is written (here,
 * when not yet in `written`), -2 when Python must write it. */
static long long
define_job(Job *j, PyObject *written, Out *o)
{
    long long oid;
    int in = id_add(j->id, written, &oid);
    if (in != 0)
        return in > 0 ? oid : -2;
    /* (its name escaped in place: a buffer of its own was a 64 KiB allocation a job) */
    size_t at = o->len;
    if (out_reserve(o, 64) < 0)
        goto python;
    LIT(o, "{\"k\":\"segment\",\"id\":");
    out_int(o, oid);
    LIT(o, ",\"kind\":\"job\",\"name\":");
    if (dumps_str(o, j->name) != 0 || out_reserve(o, 2) < 0) {
        o->len = at;
        goto python;
    }
    LIT(o, "}\n");
    return oid;
python:  /* (not written: Python writes it, and adds its id then) */
    PyErr_Clear();
    if (PySet_Discard(written, j->id) < 0)
        PyErr_Clear();
    return -2;
}

static const char *const def_site_keys[] = {"site", "coro_site", "user_site"};
static PyObject *def_site_key_objs[3];

/* The writer's Sink._define() for a Ref whose definition (and those it names)
 * holds plain values only (see plain_size): the same lines, in the same order
 * (the definitions it names, the sites its own names, itself), written here.
 * Returns its id, -2 when Python must write it (nothing written for it), -1 on
 * an error of define_site (cleared). */
/* (for the tests: encoder_stats) definitions written from their prototype's text */
static unsigned long long enc_def_texts;

/* Whether r's definition is still as define_c made it from its prototype: the
 * writer may copy its shared text (out_def_text). */
static inline int
def_unchanged(Ref *r)
{
    return ref_lazy(r)
        || (r->text != NULL && r->def_version != 0 && dict_version(r->def) == r->def_version);
}


/* Append a plain JSON value -- None (or NULL), a bool, an int of 64 bits, a str
 * JSON needs no escape for -- with the room it needs reserved here: 0, or -1
 * (not such a value, or no memory; nothing written, no error set). */
static int
out_json_value(Out *o, PyObject *v)
{
    /* (checked and written in one pass: a thread's record has six) */
    long long x = 0;
    Py_ssize_t n = 0;
    if (v != NULL && PyLong_CheckExact(v) && !small_ll(v, &x)) {
        int overflow;
        x = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (overflow || (x == -1 && PyErr_Occurred())) {
            PyErr_Clear();
            return -1;
        }
    }
    else if (v != NULL && v != Py_None && !PyBool_Check(v) && !PyLong_CheckExact(v)
             && (n = plain_len(v)) < 0) {
        return -1;
    }
    if (out_reserve(o, (size_t)n + 24) < 0) {
        PyErr_Clear();
        return -1;
    }
    if (v == NULL || v == Py_None)
        LIT(o, "null");
    else if (v == Py_True)
        LIT(o, "true");
    else if (v == Py_False)
        LIT(o, "false");
    else if (PyLong_CheckExact(v))
        out_int(o, x);
    else {
        o->data[o->len++] = '"';
        out_str(o, (const char *)PyUnicode_1BYTE_DATA(v), (size_t)n);
        o->data[o->len++] = '"';
    }
    return 0;
}

/* Append ,"key": for a plain str key, with its room reserved: 0, or -1 (not
 * plain, or no memory; nothing written, no error set). */
static int
out_key(Out *o, PyObject *key)
{
    Py_ssize_t kn = plain_len(key);
    if (kn < 0 || out_reserve(o, (size_t)kn + 4) < 0) {
        PyErr_Clear();
        return -1;
    }
    LIT(o, ",\"");
    out_str(o, (const char *)PyUnicode_1BYTE_DATA(key), (size_t)kn);
    LIT(o, "\":");
    return 0;
}

/* Write a lazy definition (ref_lazy) from its parts: its prototype's text (a, b,
 * c), id, time stamp, thread, keyword fields (named by kwnames) and owner, in
 * the order ref_def's dict has them.  0, or -1 (a value not plain; nothing
 * written, no error set). */
static int
out_lazy_def(Out *o, Ref *r, PyObject *a, PyObject *b, PyObject *c, PyObject *kwnames)
{
    size_t at = o->len;
    Py_ssize_t nkw = kwnames != Py_None ? PyTuple_GET_SIZE(kwnames) : 0;
    if (out_reserve(o, (size_t)(PyBytes_GET_SIZE(a) + PyBytes_GET_SIZE(b) + PyBytes_GET_SIZE(c))
                    + 96) < 0)
        goto fail;
    out_str(o, PyBytes_AS_STRING(a), (size_t)PyBytes_GET_SIZE(a));
    LIT(o, ",\"id\":");
    out_int(o, as_ll(r->id));
    out_str(o, PyBytes_AS_STRING(b), (size_t)PyBytes_GET_SIZE(b));
    LIT(o, ",\"ts\":");
    out_int(o, r->def_ts);
    LIT(o, ",\"th\":");
    if (out_json_value(o, r->def_th) < 0)
        goto fail;
    for (Py_ssize_t i = 0; i < nkw && i < DEF_LAZY_KW; i++)
        if (out_key(o, PyTuple_GET_ITEM(kwnames, i)) < 0 || out_json_value(o, r->def_kw[i]) < 0)
            goto fail;
    if (out_reserve(o, (size_t)PyBytes_GET_SIZE(c) + 16) < 0)
        goto fail;
    out_str(o, PyBytes_AS_STRING(c), (size_t)PyBytes_GET_SIZE(c));
    if (r->def_owner != NULL) {
        LIT(o, ",\"owner\":");
        if (out_json_value(o, r->def_owner) < 0)
            goto fail;
    }
    if (out_reserve(o, 2) < 0)
        goto fail;
    LIT(o, "}\n");
    return 0;
fail:
    PyErr_Clear();
    o->len = at;
    return -1;
}

/* Write the definition of r, unchanged since define_c made it but for fields
 * added at its end (def_unchanged): the text it shares with its prototype
 * copied, its id, time stamp, thread, keyword and added fields written, in the
 * dict's order (as out_extra writes it).  0, or -1 when one of those is not
 * plain (nothing written; no error set). */
static int
out_def_text(Out *o, Ref *r)
{
    PyObject *t = r->text;  /* (A, B, C, site, user_site, nkw, ntail, ...): see def_text */
    PyObject *a = PyTuple_GET_ITEM(t, 0), *b = PyTuple_GET_ITEM(t, 1), *c = PyTuple_GET_ITEM(t, 2);
    if (ref_lazy(r))
        return out_lazy_def(o, r, a, b, c, PyTuple_GET_ITEM(t, 8));
    Py_ssize_t nkw = PyLong_AsSsize_t(PyTuple_GET_ITEM(t, 5));
    Py_ssize_t ntail = PyLong_AsSsize_t(PyTuple_GET_ITEM(t, 6));
    size_t at = o->len;
    if (out_reserve(o, (size_t)(PyBytes_GET_SIZE(a) + PyBytes_GET_SIZE(b) + 48)) < 0)
        goto fail;
    Py_ssize_t pos = 0, i = 0;
    PyObject *key, *value;
    /* k, id, type, name, site, ts, th, the keyword fields, [expr], [lib,
     * user_site], the fields added since */
    while (PyDict_Next(r->def, &pos, &key, &value)) {
        if (i == 7 + nkw) {
            if (out_reserve(o, (size_t)PyBytes_GET_SIZE(c)) < 0)
                goto fail;
            out_str(o, PyBytes_AS_STRING(c), (size_t)PyBytes_GET_SIZE(c));
        }
        if (i >= 7 + nkw && i < 7 + nkw + ntail) {
            i++;
            continue;
        }
        switch (i++) {
        case 0:
            out_str(o, PyBytes_AS_STRING(a), (size_t)PyBytes_GET_SIZE(a));
            continue;
        case 1:
            LIT(o, ",\"id\":");
            break;
        case 2:
            out_str(o, PyBytes_AS_STRING(b), (size_t)PyBytes_GET_SIZE(b));
            continue;
        case 3:
        case 4:
            continue;
        case 5:
            if (out_reserve(o, 8) < 0)
                goto fail;
            LIT(o, ",\"ts\":");
            break;
        case 6:
            if (out_reserve(o, 8) < 0)
                goto fail;
            LIT(o, ",\"th\":");
            break;
        default:
            if (out_key(o, key) < 0)
                goto fail;
        }
        if (out_json_value(o, value) < 0)
            goto fail;
    }
    if (i < 7 + nkw + ntail || out_reserve(o, (size_t)PyBytes_GET_SIZE(c) + 2) < 0)
        goto fail;
    if (i == 7 + nkw)  /* (nothing after the keyword fields but C's) */
        out_str(o, PyBytes_AS_STRING(c), (size_t)PyBytes_GET_SIZE(c));
    LIT(o, "}\n");
    return 0;
fail:
    PyErr_Clear();
    o->len = at;
    return -1;
}

static long long
define_ref(Ref *r, PyObject *written, PyObject *wsites, PyObject *define_site, Out *o,
           PyObject *out, Py_ssize_t *base, int depth, Py_ssize_t plain)
{
    if (r->id == NULL || (r->def == NULL && !ref_lazy(r)) || !PyLong_CheckExact(r->id)
            || depth > 8)
        return -2;
    long long oid = as_ll(r->id);
    if (oid == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return -2;
    }
    int in = PySet_Contains(written, r->id);
    if (in != 0) {
        if (in < 0) {
            PyErr_Clear();
            return -2;
        }
        return oid;
    }
    /* `plain`: the size plain_size() gave for r->def (the caller checked it), or -1
     * (0 for a definition written from its prototype's text: its size is not needed) */
    int from_text = def_unchanged(r);
    size_t len = (size_t)plain;
    if ((!from_text && plain < 0 && plain_size(r->def, &len, 1) < 0)
            || (r->def != NULL && PyDict_GET_SIZE(r->def) == 0))
        return -2;
    Py_ssize_t ndeps = r->deps != NULL ? PyTuple_GET_SIZE(r->deps) : 0;
    Py_ssize_t dep_len[8];
    for (Py_ssize_t i = 0; i < ndeps; i++) {  /* (all Refs: see Ref_set_deps) */
        Ref *dep = (Ref *)PyTuple_GET_ITEM(r->deps, i);
        size_t dl = 0;
        if (dep->id == NULL || (dep->def == NULL && !ref_lazy(dep))
                || (!def_unchanged(dep) && plain_size(dep->def, &dl, 1) < 0))
            return -2;
        if (i < 8)
            dep_len[i] = (Py_ssize_t)dl;
    }
    unsigned long flushes = o->flushes;  /* (unchanged: no Python code ran since the sizes) */
    if (PySet_Add(written, r->id) < 0) {
        PyErr_Clear();
        return -2;
    }
    /* As Sink._define: the last dependency first (a stack) */
    for (Py_ssize_t i = ndeps - 1; i >= 0; i--) {
        long long d = define_ref((Ref *)PyTuple_GET_ITEM(r->deps, i), written, wsites,
                                 define_site, o, out, base, depth + 1,
                                 i < 8 && o->flushes == flushes ? dep_len[i] : -1);
        if (d == -1)
            return -1;
        if (d == -2) {  /* (cannot happen: checked above) the Python writer takes over */
            PySet_Discard(written, r->id);
            return -2;
        }
    }
    for (int k = 0; k < 3; k++) {
        PyObject *sid;  /* (borrowed) */
        if (from_text)  /* (its site and user site: a prototype's have no coro_site) */
            sid = k == 1 ? NULL : PyTuple_GET_ITEM(r->text, k == 0 ? 3 : 4);
        else if ((sid = PyDict_GetItemWithError(r->def, def_site_key_objs[k])) == NULL)
            PyErr_Clear();
        if (sid == NULL)
            continue;
        if (!PyLong_CheckExact(sid) || PyObject_IsTrue(sid) != 1)
            continue;
        int known = PySet_Contains(wsites, sid);
        if (known == 0 && define_from(define_site, sid, o, out, base) < 0)
            goto not_written;
        if (known < 0)
            PyErr_Clear();
    }
    if (from_text && def_unchanged(r) && out_def_text(o, r) == 0) {
        enc_def_texts++;
        return oid;
    }
    if (ref_lazy(r))  /* (not plain after all: cannot happen, define_c checked) */
        goto not_written;
    /* (written field by field: its size, unless known and no Python code ran since) */
    if ((from_text || o->flushes != flushes) && plain_size(r->def, &len, 1) < 0) {
        PyErr_Clear();  /* (Python code that ran meanwhile changed it) */
        goto not_written;
    }
    if (out_reserve(o, len + 4) < 0) {
        PyErr_Clear();
        goto not_written;
    }
    size_t at = o->len;
    out_extra(o, r->def);  /* ,"k":v,... */
    o->data[at] = '{';
    LIT(o, "}\n");
    return oid;
not_written:  /* (the Python writer defines it when it meets the event) */
    {
        PyObject *type, *value, *tb;  /* (an error of define_site's goes on) */
        PyErr_Fetch(&type, &value, &tb);
        if (PySet_Discard(written, r->id) < 0)
            PyErr_Clear();
        PyErr_Restore(type, value, tb);
    }
    return -1;
}

/* ------------------------------------------------- thread definitions */

#define MAX_ANCESTORS 16  /* as recorder/_sink.py MAX_ANCESTORS */

static PyObject *s_a_name, *s_a_daemonic, *s_a_ident, *s_a_native_id;

static inline PyObject *
slot(PyObject *st, Py_ssize_t off)  /* (borrowed; NULL when unset) */
{
    return *(PyObject **)((char *)st + off);
}

static inline void
slot_set(PyObject *st, Py_ssize_t off, PyObject *value)
{
    PyObject **p = (PyObject **)((char *)st + off);
    Py_XSETREF(*p, Py_NewRef(value));
}

static void remember_from(PyObject *st, PyObject *t);

/* st's slot at `off` = getattr(t, name): 0, or -1 with an error. */
static int
slot_from_attr(PyObject *st, Py_ssize_t off, PyObject *t, PyObject *name)
{
    PyObject *v = PyObject_GetAttr(t, name);
    if (v == NULL)
        return -1;
    slot_set(st, off, v);
    Py_DECREF(v);
    return 0;
}

/* The Thread a ThreadState remembers (new reference), or NULL (none, or gone;
 * no error).  Its `thread_ref` is a weak reference to it, or, while a thread the
 * C hooks started runs, the Thread itself (see thread_begin). */
static PyObject *
thread_of(PyObject *st)
{
    PyObject *ref = slot(st, off_thread_ref);
    PyObject *t = ref == NULL || ref == Py_None ? NULL
                  : PyWeakref_Check(ref) ? PyWeakref_GetObject(ref) : ref;
    if (t == NULL || t == Py_None) {
        PyErr_Clear();
        return NULL;
    }
    return Py_NewRef(t);
}

/* ThreadState.remember(thread) of its own Thread: what the thread record says of
 * it, read again (it may have been renamed).  Failures are ignored, as there. */
static void
remember_thread(PyObject *st)
{
    PyObject *t = thread_of(st);
    if (t != NULL) {
        remember_from(st, t);
        Py_DECREF(t);
    }
}

static inline int
known_slot(PyObject *st, Py_ssize_t off)
{
    PyObject *v = slot(st, off);
    return v != NULL && v != Py_None;
}

/* remember_thread() of a running thread's state: once it has its ident, native
 * id and daemon flag (none of which a running Thread can change), only its name
 * is read again. */
static void
remember_running(PyObject *st)
{
    if (!known_slot(st, off_ident) || !known_slot(st, off_native_id)
            || !known_slot(st, off_daemon)) {
        remember_thread(st);
        return;
    }
    PyObject *t = thread_of(st);
    if (t != NULL) {
        if (slot_from_attr(st, off_name, t, s_a_name) < 0)
            PyErr_Clear();
        Py_DECREF(t);
    }
}

/* ThreadState.remember(t) for a ThreadState (a slotted object of state_type). */
static void
remember_from(PyObject *st, PyObject *t)
{
    PyObject *v = slot(st, off_thread_ref);
    if (v == NULL || v == Py_None) {
        if ((v = PyWeakref_NewRef(t, NULL)) == NULL)
            goto done;
        slot_set(st, off_thread_ref, v);
        Py_DECREF(v);
    }
    if (slot_from_attr(st, off_name, t, s_a_name) < 0
            || slot_from_attr(st, off_daemon, t, s_a_daemonic) < 0
            || (v = PyObject_GetAttr(t, s_a_ident)) == NULL)
        goto done;
    int truth = PyObject_IsTrue(v);
    if (truth > 0 || (truth == 0 && slot(st, off_ident) == NULL))
        slot_set(st, off_ident, v);
    Py_DECREF(v);
    if (truth < 0)
        goto done;
    if (lookup_attr(t, s_a_native_id, &v) < 0)
        goto done;
    if (v != NULL && PyObject_IsTrue(v) == 1)
        slot_set(st, off_native_id, v);
    Py_XDECREF(v);
done:
    PyErr_Clear();
}

/* The last word on what the record of a thread that ended says of its Thread `t`
 * (its name may have changed; its daemon flag and native id cannot once it runs):
 * read once, at its end or, in summary mode, when it is shown after it (see
 * thread_end).  An error set is kept. */
static void
remember_last(PyObject *st, PyObject *t)
{
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    if (slot_from_attr(st, off_name, t, s_a_name) < 0
            || (!known_slot(st, off_daemon) && slot_from_attr(st, off_daemon, t, s_a_daemonic) < 0)
            || (!known_slot(st, off_native_id)
                && slot_from_attr(st, off_native_id, t, s_a_native_id) < 0))
        PyErr_Clear();
    PyErr_Restore(et, ev, tb);
}

/* ------------------------------------------------- thread lifecycle */

/* Thread start, run and end (recorder/_threading.py _thread_start and
 * _thread_bootstrap_inner) in C, where the Python versions cost a threaded
 * server about 15k instructions a connection.  Each does what its Python
 * counterpart does, with the same ThreadState slots and the same events, and
 * never raises an Exception into the program. */
static PyObject *s_ls_state, *s_states, *s_on_bind, *s_bind_state, *op_start, *op_end;
static PyObject *s_a_started, *s_a_target, *s_a_module, *s_pool_module;
static int
states_ready(void)
{
    return states_ok;
}

/* ThreadState(None, parent_tid) (new reference): the state of a Thread about to
 * start (one let go of before, if any: see let_go_of_state). */
static PyObject *
new_thread_state(PyObject *parent_tid)
{
    PyObject *st = pool_take(&spare_states);
    if (st == NULL)
        st = state_type->tp_alloc(state_type, 0);
    if (st == NULL)
        return NULL;
    PyObject *tid = new_id();
    PyObject *ts = tid != NULL ? now_ns() : NULL;
    PyObject *zero = ts != NULL ? PyLong_FromLong(0) : NULL;
    if (zero == NULL) {
        Py_XDECREF(tid);
        Py_XDECREF(ts);
        Py_DECREF(st);
        return NULL;
    }
    /* No buffer yet: its first buffered event makes it (state_buffer).  The state
     * is not tracked by the GC: it is in no cycle the GC could free (its Thread
     * holds it, it holds the Thread and its parent weakly, its buffer is
     * untracked), and the young generation's collections traversed every request
     * thread's one. */
    untrack_if_tracked(st);
    slot_set(st, off_tid, tid);
    slot_set(st, off_buf, Py_None);
    slot_set(st, off_gap, Py_None);
    slot_set(st, off_dropped, zero);
    slot_set(st, off_dropped_reported, zero);
    slot_set(st, off_name, Py_None);
    slot_set(st, off_parent, parent_tid);
    slot_set(st, off_parent_ref, Py_None);
    slot_set(st, off_ident, Py_None);
    slot_set(st, off_native_id, Py_None);
    slot_set(st, off_daemon, Py_None);
    slot_set(st, off_ts, ts);
    slot_set(st, off_thread_ref, Py_None);
    slot_set(st, off_aio, Py_False);
    slot_set(st, off_ended, Py_False);
    Py_DECREF(tid);
    Py_DECREF(ts);
    Py_DECREF(zero);
    /* Nothing is read from the Thread here: while it runs, the state holds the
     * Thread itself (thread_begin to thread_end), which the writer reads again
     * before it defines the thread (remember_running), and its end reads its
     * name, daemon flag and native id as the last word.  (A weak reference made
     * here, and the name and daemon flag read, cost a thread per request about
     * 0.7k instructions that summary mode never needed.) */
    return st;
}

/* task_for() past its answer for a thread that is not asyncio's. */
static PyObject *
task_for_slow(PyObject *st)
{
    int is_aio;
    PyObject *aio = states_ok && Py_TYPE(st) == state_type ? slot(st, off_aio) : NULL;
    if (aio == Py_False || aio == Py_True) {
        is_aio = aio == Py_True;
    }
    else {  /* (not a plain bool, or not a configured state: asked) */
        if ((aio = state_get(st, off_aio, s_aio)) == NULL)
            return NULL;
        is_aio = PyObject_IsTrue(aio);
        Py_DECREF(aio);
        if (is_aio < 0)
            return NULL;
    }
    return is_aio ? task_of_c(st) : Py_NewRef(Py_None);
}

/* thread._started.is_set(), read from the Event's flag: 1, 0 or -1. */
static int
started_flag(PyObject *thread)
{
    PyObject *started = PyObject_GetAttr(thread, s_a_started);
    PyObject *v = started != NULL ? PyObject_GetAttr(started, s_flag) : NULL;
    Py_XDECREF(started);
    return truth_of(v);
}

/* Whether Thread.start records `thread`: initialised and not started yet (Python:
 * ``self._initialized and not self._started.is_set()``), 1, 0 or -1 (no
 * `_ident`: not initialised). */
static int
thread_unstarted(PyObject *thread)
{
    /* (its `_ident`, one attribute read, rather than `_started._flag`, two, and
     * `_initialized`, a third: the new thread sets `_ident` before `_started`, and
     * Thread.start returns only once `_started` is set, so a Thread that was
     * started has its ident; one whose __init__ did not run has no `_ident`: -1,
     * an AttributeError the caller swallows, and the original start raises its
     * own error) */
    PyObject *ident = PyObject_GetAttr(thread, s_a_ident);
    if (ident == NULL)
        return -1;
    Py_DECREF(ident);
    return ident == Py_None;
}

/* Whether `thread` runs a ThreadPoolExecutor's worker (its target is defined in
 * concurrent.futures.thread): 1 or 0.  Not one while that module is not imported
 * (a dict lookup instead of reading the target: a thread per request paid 500
 * instructions for it). */
static int
runs_pool_worker(PyObject *thread)
{
    /* (sys.modules' version when it last had no such module: unchanged since, it
     * still has none -- a thread per request looked it up each, 140 instructions) */
    static uint64_t none_at = 0;
    PyObject *modules = PyImport_GetModuleDict();  /* borrowed */
    uint64_t v = modules != NULL ? dict_version(modules) : 0;
    if (v != 0 && v == none_at)
        return 0;
    PyObject *pool = modules != NULL ? PyDict_GetItemWithError(modules, s_pool_module) : NULL;
    if (pool == NULL) {
        if (!PyErr_Occurred())
            none_at = v;
        PyErr_Clear();
        return 0;
    }
    PyObject *target, *module = NULL;
    if (lookup_attr(thread, s_a_target, &target) <= 0 || target == Py_None) {
        Py_XDECREF(target);
        PyErr_Clear();
        return 0;
    }
    if (PyFunction_Check(target))  /* (the usual target: its module without a lookup) */
        module = Py_XNewRef(PyFunction_GET_MODULE(target));
    else if (lookup_attr(target, s_a_module, &module) <= 0)
        module = NULL;
    int is = module != NULL && PyUnicode_Check(module)
        && PyUnicode_Compare(module, s_pool_module) == 0;
    Py_DECREF(target);
    Py_XDECREF(module);
    PyErr_Clear();
    return is;
}


/* A Thread.start under way (thread_start_method) hands its start's parts to the
 * new thread, whose thread_begin makes the thread's state from them and gives it
 * to the Thread (``_ls_state``): the start reads nothing of the Thread, and the new
 * thread does not read back what its parent set (an ``_ident`` read to tell
 * whether the Thread started already, and the ``_ls_state`` write and read, cost a
 * thread per request ~0.9k instructions in CPython's generic attribute lookup).
 * Each lives on its starting call's C stack, listed here while the original start
 * runs (the new thread runs thread_begin before that returns); a Thread that
 * cannot start, or started already, never takes it, and one whose class runs its
 * own _bootstrap_inner gets its state once the original start returned. */
typedef struct {
    unsigned long long serial;       /* (tells it from a later one at the same address) */
    PyObject *thread;                /* borrowed: the start call holds it */
    PyObject *parent, *site, *task;  /* the start's parts (strong) */
    long long ts;
    PyObject *child;                 /* the state made from it (strong), or NULL */
    int taken;                       /* the new thread's thread_begin took it */
    int held;                        /* the start held back by summary mode's filter */
} Handover;
static Handover **handovers;
static int nhandovers, handovers_cap;

/* The handover listed at `h` with this serial, or NULL (its call returned). */
static Handover *
handover_listed(Handover *h, unsigned long long serial)
{
    for (int i = 0; i < nhandovers; i++)
        if (handovers[i] == h && h->serial == serial)
            return h;
    return NULL;
}

static Handover *
handover_of(PyObject *thread)
{
    for (int i = 0; i < nhandovers; i++)
        if (handovers[i]->thread == thread && !handovers[i]->taken)
            return handovers[i];
    return NULL;
}

static void
handover_remove(Handover *h)
{
    for (int i = 0; i < nhandovers; i++) {
        if (handovers[i] == h) {
            handovers[i] = handovers[--nhandovers];
            return;
        }
    }
}

/* thread_start(thread) -> whether it runs a pool's worker (True/False), or None:
 * Thread.start is starting `thread`.  When recording is on and the Thread is
 * initialised and not started: its ThreadState, named after it, child of the
 * calling thread's, kept as thread._ls_state, and the parent's ``start`` event at
 * the caller of Thread.start. */
static PyObject *
thread_start_at(PyObject *mod, PyObject *thread, PyObject *depth)
{
    if (core_dict == NULL || !states_ready() || !recording_on()) {
        if (PyErr_Occurred() && swallow() < 0)
            return NULL;
        Py_RETURN_NONE;
    }
    PyObject *child = NULL, *ref = NULL, *site = NULL, *task = NULL, *r = NULL;
    PyObject *parent = NULL;
    int unstarted = thread_unstarted(thread);
    if (unstarted <= 0)
        goto done;
    if ((parent = thread_state()) == NULL || Py_TYPE(parent) != state_type)
        goto done;
    PyObject *ptid = slot(parent, off_tid);
    if (ptid == NULL || (child = new_thread_state(ptid)) == NULL)
        goto done;
    if ((ref = PyWeakref_NewRef(parent, NULL)) == NULL)
        goto done;
    slot_set(child, off_parent_ref, ref);
    if (PyObject_SetAttr(thread, s_ls_state, child) < 0)
        goto done;
    /* (the caller of Thread.start: site_id(2) from the Python hook, 1 from C) */
    if ((site = site_id_c(mod, &depth, 1)) == NULL || (task = task_for(parent)) == NULL)
        goto done;
    /* Summary mode holds the start back in C (sf_life_begin) until the thread is
     * shown: straight there, not through append's buffer check and the filter's
     * dispatch (300 instructions a thread), while the parent's buffer has room
     * and no gap (else append judges it as before). */
    int held = 0;
    if (sf_on && buffered_total < buffer_budget && slot(parent, off_gap) == Py_None
            && (held = sf_life_begin(1, parent, op_start, child, site, task, NULL, 0)) < 0)
        goto done;
    if (held > 0) {
        r = Py_NewRef(Py_None);
        goto done;
    }
    PyObject *args[5] = {parent, op_start, child, site, task};
    r = append(mod, args, 5);
done:
    Py_XDECREF(parent);
    Py_XDECREF(child);
    Py_XDECREF(ref);
    Py_XDECREF(site);
    Py_XDECREF(task);
    if (r == NULL && PyErr_Occurred() && swallow() < 0)
        return NULL;
    Py_XDECREF(r);
    if (unstarted <= 0)
        Py_RETURN_NONE;
    return PyBool_FromLong(runs_pool_worker(thread));
}

static PyObject *
thread_start(PyObject *mod, PyObject *thread)
{
    return thread_start_at(mod, thread, int_two);
}

static PyObject *thread_orig_start, *thread_install_jobs;

static void
forget_handovers(void)
{
    nhandovers = 0;  /* (each is its starting call's: that call lets go of it) */
}

/* The parts of a start by the calling thread of a Thread (its caller one frame up
 * from C) into *h, listed for the new thread: 1, or 0 when not recorded (h
 * untouched and not listed; an error of ours swallowed), -1 with an error that
 * must not be swallowed. */
static int
handover_begin(Handover *h, PyObject *thread)
{
    if (core_dict == NULL || !states_ready() || !recording_on())
        goto none;
    PyObject *parent = thread_state();
    if (parent == NULL)
        goto none;
    if (Py_TYPE(parent) != state_type) {
        Py_DECREF(parent);
        goto none;
    }
    PyObject *site = site_id_c(NULL, &int_one, 1);
    PyObject *task = site != NULL ? task_for(parent) : NULL;
    long long ts = task != NULL ? now_ll() : 0;
    if (ts != 0 && nhandovers == handovers_cap) {  /* (here: the above may run Python
                                                    * code, and other starts meanwhile) */
        int cap = handovers_cap ? 2 * handovers_cap : 16;
        Handover **more = PyMem_Realloc(handovers, sizeof(Handover *) * (size_t)cap);
        if (more != NULL) {
            handovers = more;
            handovers_cap = cap;
        }
        else {
            ts = 0;  /* (not recorded) */
        }
    }
    if (ts == 0) {
        Py_DECREF(parent);
        Py_XDECREF(site);
        Py_XDECREF(task);
        goto none;
    }
    static unsigned long long serials;
    *h = (Handover){++serials, thread, parent, site, task, ts, NULL, 0, 0};
    handovers[nhandovers++] = h;
    return 1;
none:
    if (PyErr_Occurred() && swallow() < 0)
        return -1;
    return 0;
}

static void
handover_clear(Handover *h)
{
    Py_CLEAR(h->parent);
    Py_CLEAR(h->site);
    Py_CLEAR(h->task);
    Py_CLEAR(h->child);
}

/* The state of a Thread about to run, made from the start's parts in `h` (new
 * reference), given to the Thread (``_ls_state``), its start held back by summary
 * mode's filter when it can be (else the starting call appends it); NULL with an
 * error. */
static PyObject *
state_from_handover(Handover *h, PyObject *thread)
{
    PyObject *child = new_thread_state(slot(h->parent, off_tid));
    if (child == NULL)
        return NULL;
    PyObject *ref = PyWeakref_NewRef(h->parent, NULL);
    if (ref == NULL || PyObject_SetAttr(thread, s_ls_state, child) < 0) {
        Py_XDECREF(ref);
        Py_DECREF(child);
        return NULL;
    }
    slot_set(child, off_parent_ref, ref);
    Py_DECREF(ref);
    /* Summary mode holds the start back in C (sf_life_begin) until the thread is
     * shown, before any event of the thread's own reaches the filter; straight
     * there, not through append's buffer check and the filter's dispatch, while
     * the parent's buffer has room and no gap (else the starting call appends it
     * once the original start returned, and the filter judges it). */
    if (sf_on && recording_on() && buffered_total < buffer_budget
            && slot(h->parent, off_gap) == Py_None) {
        int held = sf_life_begin(1, h->parent, op_start, child, h->site, h->task, NULL, h->ts);
        if (held < 0) {
            Py_DECREF(child);
            return NULL;
        }
        h->held = held;
    }
    h->child = Py_NewRef(child);
    return child;
}

/* After the original start returned (r, NULL when it raised), with the start's
 * parts in `h`: the start appended (stamped when it was called) unless the new
 * thread's filter held it back; a Thread whose class runs its own
 * _bootstrap_inner (which ours never wraps) gets its state now, with what the
 * thread record needs, as a thread the recorder did not start.  0, or -1 with an
 * error that must not be swallowed. */
static int
handover_end(Handover *h, PyObject *thread, PyObject *r)
{
    handover_remove(h);
    if (r == NULL)  /* (it did not start: nothing recorded) */
        return 0;
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    int rc = 0;
    if (!h->taken) {
        PyObject *child = state_from_handover(h, thread);
        if (child != NULL)
            remember_from(child, thread);
        Py_XDECREF(child);
    }
    if (h->child != NULL && !h->held) {
        PyObject *ts = PyLong_FromLongLong(h->ts);
        PyObject *a = NULL;
        if (ts != NULL) {
            PyObject *eargs[7] = {h->parent, op_start, h->child, h->site, h->task, Py_None, ts};
            a = append(NULL, eargs, 7);
            Py_DECREF(ts);
        }
        Py_XDECREF(a);
    }
    if (PyErr_Occurred() && swallow() < 0)
        rc = -1;
    if (rc < 0) {
        Py_XDECREF(et);
        Py_XDECREF(ev);
        Py_XDECREF(tb);
    }
    else {
        PyErr_Restore(et, ev, tb);
    }
    return rc;
}

/* Thread.start in C (_threading.install sets it; the Python hook without the
 * accelerator): the start's parts handed to the new thread, a pool's job hooks put
 * in when the thread runs a pool's worker, the original start, then the start
 * event.  A thread per request ran the Python hook's frame each. */
static PyObject *
thread_start_method(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (thread_orig_start == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "traced Thread.start without the original");
        return NULL;
    }
    if (nargs > 0 || kwnames != NULL)  /* (the original raises its own error) */
        return call_with_self(thread_orig_start, self, args, nargs, kwnames);
    /* The start's parts are taken now and handed to the new thread, which makes
     * its state (thread_begin: see Handover); the start event is appended once the
     * original returned, stamped when it was called: the new thread has run its
     * _bootstrap_inner up to _started by then, so the writer, which defines the
     * thread when it meets that event, finds its ident and native id, and a thread
     * that could not start has no start event.  Summary mode's filter holds a
     * start back until the thread is shown, which happens after it ran: the new
     * thread holds it there before its own events (state_from_handover). */
    Handover h;
    int listed = handover_begin(&h, self);
    if (listed < 0)
        return NULL;
    if (listed && runs_pool_worker(self)) {  /* (its job hooks, before it runs) */
        PyObject *r = PyObject_CallNoArgs(thread_install_jobs);
        Py_XDECREF(r);
        if (r == NULL && swallow() < 0) {
            handover_remove(&h);
            handover_clear(&h);
            return NULL;
        }
    }
    PyObject *r = PyObject_CallOneArg(thread_orig_start, self);
    if (listed) {
        int rc = handover_end(&h, self, r);
        handover_clear(&h);
        if (rc < 0) {
            Py_XDECREF(r);
            return NULL;
        }
    }
    return r;
}

/* Thread._bootstrap_inner in C, as _threading._thread_bootstrap_inner: the
 * thread's state bound (thread_begin), the original run, then its end
 * (thread_end) and the on_thread_end hook, whatever the run raised. */
static PyObject *thread_orig_bootstrap, *s_on_thread_end;
static PyObject *thread_begin(PyObject *mod, PyObject *thread);
static PyObject *thread_end(PyObject *mod, PyObject *const *args, Py_ssize_t nargs);

/* What a hooked Thread method returns once the original ran: NULL when `failed`
 * (an error of ours that must not be swallowed replaces the original's outcome,
 * as in a finally), else the original's result `r`, or its exception (et, ev,
 * tb) restored. */
static PyObject *
after_original(int failed, PyObject *r, PyObject *et, PyObject *ev, PyObject *tb)
{
    if (failed) {
        Py_XDECREF(et);
        Py_XDECREF(ev);
        Py_XDECREF(tb);
        Py_XDECREF(r);
        return NULL;
    }
    if (r == NULL)
        PyErr_Restore(et, ev, tb);
    return r;
}

static PyObject *
thread_bootstrap_method(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                        PyObject *kwnames)
{
    if (thread_orig_bootstrap == NULL || nargs > 0 || kwnames != NULL) {
        PyErr_SetString(PyExc_TypeError, "_bootstrap_inner() takes no arguments");
        return NULL;
    }
    PyObject *st = thread_begin(NULL, self);
    if (st == NULL)
        return NULL;
    PyObject *r = PyObject_CallOneArg(thread_orig_bootstrap, self);
    PyObject *et = NULL, *ev = NULL, *tb = NULL;
    if (r == NULL)
        PyErr_Fetch(&et, &ev, &tb);
    if (st != Py_None) {  /* (an error here replaces the run's, as in a finally) */
        PyObject *end_args[2] = {st, self};
        PyObject *e = thread_end(NULL, end_args, 2);
        if (e == NULL) {
            Py_DECREF(st);
            drop_own();
            return after_original(1, r, et, ev, tb);
        }
        Py_DECREF(e);
    }
    Py_DECREF(st);
    static CoreCached on_thread_end;
    PyObject *hook = core_dict != NULL ? core_get(&on_thread_end, s_on_thread_end)
                                       : NULL;  /* (borrowed) */
    if (hook != NULL && hook != Py_None) {
        Py_INCREF(hook);
        PyObject *h = PyObject_CallNoArgs(hook);
        Py_DECREF(hook);
        Py_XDECREF(h);
    }
    /* (what this OS thread still runs is the interpreter's teardown of it: a
     * lock used there finds no state, as in any thread the recorder did not
     * start, and gets one of its own) */
    drop_own();
    return after_original(PyErr_Occurred() && swallow() < 0, r, et, ev, tb);
}

static PyMethodDef thread_bootstrap_method_def = {
    "_bootstrap_inner", (PyCFunction)(void (*)(void))thread_bootstrap_method,
    METH_FASTCALL | METH_KEYWORDS,
    "The original Thread._bootstrap_inner between the thread's begin and end (lockscope)."};

static PyMethodDef thread_start_method_def = {
    "start", (PyCFunction)(void (*)(void))thread_start_method, METH_FASTCALL | METH_KEYWORDS,
    "start($self, /)\n--\n\nThe original Thread.start, its start recorded (lockscope)."};

static PyObject *
set_thread_start(PyObject *mod, PyObject *args)
{
    PyObject *orig, *install, *bootstrap;
    if (!PyArg_ParseTuple(args, "OOO", &orig, &install, &bootstrap))
        return NULL;
    PyObject **slots[] = {&thread_orig_start, &thread_install_jobs, &thread_orig_bootstrap};
    PyObject *values[] = {orig, install, bootstrap};
    hold_all(slots, values, 3);
    Py_RETURN_NONE;
}

/* Thread.join in C (_threading.install sets it; _thread_join without the
 * accelerator), as _thread_join: the join of a started Thread the recorder
 * knows, by another thread, while recording: ``wait-begin`` while the thread
 * is alive, the original join, ``wait-end`` with its outcome, and ``join`` once
 * it ended (or had).  The Python hook cost a joined thread about 4k
 * instructions (its frame, two method calls, current_thread()). */
static PyObject *thread_orig_join, *threading_active;
static PyObject *s_a_is_alive, *s_a_qualname, *s_k_timeout, *s_k_outcome, *s_k_error;
static PyObject *op_join, *op_wait_begin, *op_wait_end, *s_v_ok, *s_v_timeout, *s_v_error;

/* The calling thread's ident as an int (new reference).  A thread per request
 * often gets the ident its predecessor had (the C library reuses a finished
 * thread's stack and control block), so the last few are kept: an int made and
 * freed a thread fewer.  (Called with the GIL.) */
#define IDENTS_KEPT 8
static PyObject *
ident_now(void)
{
    static unsigned long kept_id[IDENTS_KEPT];
    static PyObject *kept[IDENTS_KEPT];
    static int next_kept;
    unsigned long id = PyThread_get_thread_ident();
    for (int i = 0; i < IDENTS_KEPT; i++)
        if (kept[i] != NULL && kept_id[i] == id)
            return Py_NewRef(kept[i]);
    PyObject *v = PyLong_FromUnsignedLong(id);
    if (v != NULL) {
        Py_XSETREF(kept[next_kept], Py_NewRef(v));
        kept_id[next_kept] = id;
        next_kept = (next_kept + 1) % IDENTS_KEPT;
    }
    return v;
}

/* Whether the calling thread may record the join of `thread`: `thread` started
 * and is not the calling thread (threading.current_thread(), read from
 * threading._active without making a dummy Thread).  1, 0 or -1. */
static int
joinable(PyObject *thread)
{
    int set = started_flag(thread);
    if (set <= 0)
        return set;
    PyObject *ident = ident_now();
    if (ident == NULL)
        return -1;
    PyObject *current = PyDict_GetItemWithError(threading_active, ident);  /* borrowed */
    Py_DECREF(ident);
    if (current == NULL && PyErr_Occurred())
        return -1;
    return current != thread;
}

/* Append (op, target, site) for the calling thread, with `extra` (NULL: none);
 * an error is swallowed (0), unless it must not be (-1). */
static int
join_event(PyObject *op, PyObject *target, PyObject *site, PyObject *extra)
{
    PyObject *st = thread_state(), *task = NULL, *r = NULL;
    if (st != NULL && (task = task_for(st)) != NULL) {
        PyObject *ev[6] = {st, op, target, site, task, extra};
        r = append(NULL, ev, extra != NULL ? 6 : 5);
    }
    Py_XDECREF(st);
    Py_XDECREF(task);
    Py_XDECREF(r);
    return r == NULL ? swallow() : 0;
}

/* The `timeout` field of a join's wait-begin (new reference), as _join_timeout:
 * an int or float as it is, another number as a float, else NULL (no field, no
 * error: the original join raises on it, having waited for nothing). */
static PyObject *
join_timeout(PyObject *timeout)
{
    if (timeout == Py_None)
        return NULL;
    if ((PyLong_CheckExact(timeout) || PyFloat_CheckExact(timeout)))
        return Py_NewRef(timeout);
    PyObject *f = PyNumber_Float(timeout);
    if (f == NULL)
        PyErr_Clear();
    return f;
}

/* Fetch the raised exception into (et, ev, tb); its type's qualified name
 * (_error_name), or NULL when that cannot be read (no error left). */
static PyObject *
fetch_error(PyObject **et, PyObject **ev, PyObject **tb)
{
    PyErr_Fetch(et, ev, tb);
    PyObject *name = PyObject_GetAttr(*et != NULL ? *et : PyExc_Exception, s_a_qualname);
    PyErr_Clear();
    return name;
}

/* Record ``wait-begin`` of `target` at `site` for the calling thread, with the
 * `timeout` field a number gives (join_timeout: a trace holds a number there, or
 * nothing): 0, or -1 with an error that must go on. */
static int
wait_begin_event(PyObject *target, PyObject *site, PyObject *timeout)
{
    PyObject *extra = NULL, *seconds = join_timeout(timeout);
    if (seconds != NULL && (extra = PyDict_New()) != NULL
            && PyDict_SetItem(extra, s_k_timeout, seconds) < 0)
        Py_CLEAR(extra);
    int lost = seconds != NULL && extra == NULL;  /* (an error is set) */
    Py_XDECREF(seconds);
    int rc = (lost && swallow() < 0) || join_event(op_wait_begin, target, site, extra) < 0;
    Py_XDECREF(extra);
    return rc ? -1 : 0;
}

/* Record ``wait-end`` of `target` at `site`: its `outcome` and, when an exception
 * ended it, the exception's name (`error`, or NULL): 0, or -1 with an error that
 * must go on. */
static int
wait_end_event(PyObject *target, PyObject *site, PyObject *outcome, PyObject *error)
{
    PyObject *extra = PyDict_New();
    if (extra != NULL && (PyDict_SetItem(extra, s_k_outcome, outcome) < 0
                          || (error != NULL && PyDict_SetItem(extra, s_k_error, error) < 0)))
        Py_CLEAR(extra);
    int rc = extra == NULL ? swallow() : join_event(op_wait_end, target, site, extra);
    Py_XDECREF(extra);
    return rc;
}

/* thread.is_alive(): 1, 0 or -1. */
static int
thread_alive(PyObject *thread)
{
    return truth_of(PyObject_CallMethodNoArgs(thread, s_a_is_alive));
}

static PyObject *
thread_join_method(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (thread_orig_join == NULL || threading_active == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "traced Thread.join without the original");
        return NULL;
    }
    Py_ssize_t nkw = kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0;
    PyObject *timeout = Py_None;
    if (nargs + nkw > 1 || (nkw == 1 && PyUnicode_Compare(PyTuple_GET_ITEM(kwnames, 0),
                                                          s_k_timeout) != 0)) {
        PyErr_Clear();  /* (the original raises its own error) */
        return call_with_self(thread_orig_join, self, args, nargs, kwnames);
    }
    if (nargs + nkw == 1)
        timeout = args[0];
    PyObject *target = NULL;
    int ok = core_dict != NULL && states_ready() && recording_on()
        && lookup_attr(self, s_ls_state, &target) > 0 && target != Py_None;
    if (ok && (ok = joinable(self)) < 0)
        ok = 0;
    if (!ok) {
        Py_XDECREF(target);
        if (PyErr_Occurred() && swallow() < 0)
            return NULL;
        return call_with_self(thread_orig_join, self, args, nargs, kwnames);
    }
    /* (the caller of Thread.join: one frame up from C) */
    PyObject *site = site_id_c(NULL, &int_one, 1);
    int alive = site != NULL ? thread_alive(self) : -1;
    if (alive < 0) {  /* (is_alive raised: the original will too, or not) */
        Py_XDECREF(site);
        Py_DECREF(target);
        if (swallow() < 0)
            return NULL;
        return call_with_self(thread_orig_join, self, args, nargs, kwnames);
    }
    if (alive && wait_begin_event(target, site, timeout) < 0) {
        Py_DECREF(site);
        Py_DECREF(target);
        return NULL;
    }
    PyObject *r = call_with_self(thread_orig_join, self, args, nargs, kwnames);
    PyObject *outcome = s_v_error, *error = NULL;
    PyObject *et = NULL, *ev = NULL, *tb = NULL;
    if (r == NULL) {
        error = fetch_error(&et, &ev, &tb);
    }
    else if (alive) {
        int still = thread_alive(self);
        if (still < 0) {  /* (as an exception of the original join) */
            Py_CLEAR(r);
            error = fetch_error(&et, &ev, &tb);
        }
        else {
            outcome = still ? s_v_timeout : s_v_ok;
        }
    }
    else {
        outcome = s_v_ok;
    }
    if (r != NULL && slot(target, off_ended) == Py_True && slot(target, off_name) == Py_None)
        remember_last(target, self);  /* (left unread at its end: see thread_end) */
    int failed = alive && wait_end_event(target, site, outcome, error) < 0;
    if (!failed && (outcome == s_v_ok || !alive))
        failed = join_event(op_join, target, site, NULL) < 0;
    Py_XDECREF(error);
    Py_DECREF(site);
    Py_DECREF(target);
    return after_original(failed, r, et, ev, tb);
}

/* Condition.wait of the traced Condition in C (recorder/_threading.py's wait
 * without the C accelerator): the original's body, with ``wait-begin`` once the
 * lock is given up and ``wait-end`` (its outcome) before it is taken back, at
 * the caller of wait.  The Python wait cost each traced wait about 10k
 * instructions of frames.  Odd arguments go to the Python wait (its errors). */
static PyObject *cond_py_wait, *s_append, *s_remove;

/* Set the exception raised now as the __context__ of (et, ev, tb), as an
 * exception raised in a finally clause; the references are taken. */
static void
chain_raised(PyObject *et, PyObject *ev, PyObject *tb)
{
    if (et == NULL)
        return;
    PyErr_NormalizeException(&et, &ev, &tb);
    if (tb != NULL && ev != NULL)
        PyException_SetTraceback(ev, tb);
    PyObject *nt, *nv, *ntb;
    PyErr_Fetch(&nt, &nv, &ntb);
    PyErr_NormalizeException(&nt, &nv, &ntb);
    if (nv != NULL && ev != NULL && nv != ev)
        PyException_SetContext(nv, Py_NewRef(ev));
    PyErr_Restore(nt, nv, ntb);
    Py_XDECREF(et);
    Py_XDECREF(ev);
    Py_XDECREF(tb);
}

static PyObject *
condition_wait_method(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                      PyObject *kwnames)
{
    if (cond_py_wait == NULL || ctor_allocate_lock == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "traced Condition.wait without its setup");
        return NULL;
    }
    Py_ssize_t nkw = kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0;
    if (nargs + nkw > 1 || (nkw == 1 && PyUnicode_Compare(PyTuple_GET_ITEM(kwnames, 0),
                                                          s_k_timeout) != 0)) {
        PyErr_Clear();
        return call_with_self(cond_py_wait, self, args, nargs, kwnames);
    }
    PyObject *timeout = nargs + nkw == 1 ? args[0] : Py_None;
    int owned = truth_of(PyObject_CallMethodNoArgs(self, s_is_owned));
    if (owned <= 0) {
        if (owned == 0)
            PyErr_SetString(PyExc_RuntimeError, "cannot wait on un-acquired lock");
        return NULL;
    }
    PyObject *waiters = NULL, *saved = NULL, *site = NULL, *r = NULL;
    PyObject *waiter = PyObject_CallNoArgs(ctor_allocate_lock);
    if (waiter == NULL || (r = PyObject_CallMethodNoArgs(waiter, s_acquire)) == NULL)
        goto early;
    Py_DECREF(r);
    if ((waiters = PyObject_GetAttr(self, s_waiters)) == NULL
            || (r = PyObject_CallMethodOneArg(waiters, s_append, waiter)) == NULL)
        goto early;
    Py_DECREF(r);
    if ((saved = PyObject_CallMethodNoArgs(self, s_release_save)) == NULL)
        goto early;
    /* -- from here on, the lock is taken back whatever happens (the original's
     * try/finally) -- */
    PyObject *et = NULL, *ev = NULL, *tb = NULL, *error = NULL;
    int on = core_dict != NULL && recording_on();
    if (on)
        site = site_id_c(NULL, &int_one, 1);  /* (the caller of wait; never an Exception) */
    if (on && site != NULL) {
        if (wait_begin_event(self, site, timeout) < 0)
            Py_CLEAR(site);  /* (an error that must go on: raised as the wait's) */
    }
    else if (PyErr_Occurred() && swallow() == 0) {
        on = 0;
    }
    r = NULL;
    int gotit = 0;
    if (!PyErr_Occurred()) {
        if (timeout == Py_None) {
            r = PyObject_CallMethodNoArgs(waiter, s_acquire);
            if (r != NULL)
                Py_SETREF(r, Py_NewRef(Py_True));  /* (the original returns True) */
        }
        else {
            int positive = PyObject_RichCompareBool(timeout, int_zero, Py_GT);
            if (positive > 0) {
                PyObject *a[3] = {waiter, Py_True, timeout};
                r = PyObject_VectorcallMethod(s_acquire, a, 3 | PY_VECTORCALL_ARGUMENTS_OFFSET,
                                              NULL);
            }
            else if (positive == 0) {
                PyObject *a[2] = {waiter, Py_False};
                r = PyObject_VectorcallMethod(s_acquire, a, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET,
                                              NULL);
            }
        }
        if (r != NULL && (gotit = PyObject_IsTrue(r)) < 0) {
            Py_CLEAR(r);
            gotit = 0;
        }
    }
    PyObject *outcome = s_v_error;
    if (r == NULL)
        error = fetch_error(&et, &ev, &tb);
    else
        outcome = gotit ? s_v_ok : s_v_timeout;
    /* (finally:) */
    int failed = on && site != NULL && wait_end_event(self, site, outcome, error) < 0;
    if (!failed) {
        PyObject *back = PyObject_CallMethodOneArg(self, s_acquire_restore, saved);
        failed = back == NULL;
        Py_XDECREF(back);
    }
    if (!failed && !gotit) {
        PyObject *gone = PyObject_CallMethodOneArg(waiters, s_remove, waiter);
        if (gone == NULL && PyErr_ExceptionMatches(PyExc_ValueError))
            PyErr_Clear();
        else
            failed = gone == NULL;
        Py_XDECREF(gone);
    }
    Py_XDECREF(error);
    Py_XDECREF(site);
    Py_DECREF(saved);
    Py_DECREF(waiters);
    Py_DECREF(waiter);
    if (failed) {
        Py_XDECREF(r);
        chain_raised(et, ev, tb);
        return NULL;
    }
    if (r == NULL)
        PyErr_Restore(et, ev, tb);
    return r;
early:
    Py_XDECREF(waiters);
    Py_XDECREF(waiter);
    return NULL;
}

static PyMethodDef condition_wait_method_def = {
    "wait", (PyCFunction)(void (*)(void))condition_wait_method, METH_FASTCALL | METH_KEYWORDS,
    "wait($self, /, timeout=None)\n--\n\nThe original Condition.wait, the wait recorded"
    " (lockscope)."};

static PyObject *
set_condition_wait(PyObject *mod, PyObject *py_wait)
{
    Py_XSETREF(cond_py_wait, Py_NewRef(py_wait));
    Py_RETURN_NONE;
}

static PyMethodDef thread_join_method_def = {
    "join", (PyCFunction)(void (*)(void))thread_join_method, METH_FASTCALL | METH_KEYWORDS,
    "join($self, /, timeout=None)\n--\n\nThe original Thread.join, the join recorded (lockscope)."};

static PyObject *
set_thread_join(PyObject *mod, PyObject *args)
{
    PyObject *orig, *active;
    if (!PyArg_ParseTuple(args, "OO!", &orig, &PyDict_Type, &active))
        return NULL;
    PyObject **slots[] = {&thread_orig_join, &threading_active};
    PyObject *values[] = {orig, active};
    hold_all(slots, values, 2);
    Py_RETURN_NONE;
}

/* bind_state(st) (recorder._core) for a new thread: bound to this OS thread
 * (tl_own: thread_state() looks there first), and on the writer's list of
 * states.  While the one-off on_bind hook is pending, the Python version runs
 * it.  0, or -1 with an error. */
static int
bind_new_state(PyObject *st)
{
    static CoreCached on_bind, states_list;
    PyObject *hook = core_get(&on_bind, s_on_bind);  /* borrowed */
    PyObject *states = hook == Py_None ? core_get(&states_list, s_states) : NULL;
    if (hook != Py_None || states == NULL || !PyList_CheckExact(states)) {
        if (PyErr_Occurred())
            return -1;
        PyObject *bind = PyDict_GetItemWithError(core_dict, s_bind_state);
        if (bind == NULL)
            return PyErr_Occurred() ? -1 : (PyErr_SetString(PyExc_RuntimeError, "no bind_state"), -1);
        PyObject *r = PyObject_CallOneArg(bind, st);
        Py_XDECREF(r);
        return r == NULL ? -1 : 0;
    }
    if (PyList_Append(states, st) < 0)
        return -1;
    Py_XSETREF(tl_own, Py_NewRef(st));
    tl_own_epoch = state_key_epoch;
    return 0;
}

/* thread_begin(thread) -> its ThreadState, now bound to the calling (new)
 * thread, or None (not recorded, or the binding failed). */
static PyObject *
thread_begin(PyObject *mod, PyObject *thread)
{
    PyObject *st;
    Handover *h = core_dict != NULL && states_ready() ? handover_of(thread) : NULL;
    if (h != NULL) {
        /* (from a copy: making the state may run Python code, meanwhile the
         * starting call may return -- an exception in its wait -- and its
         * handover with it) */
        h->taken = 1;
        Handover mine = *h;
        Py_INCREF(mine.parent);
        Py_INCREF(mine.site);
        Py_INCREF(mine.task);
        st = state_from_handover(&mine, thread);
        if (st != NULL && (h = handover_listed(h, mine.serial)) != NULL) {
            h->child = Py_NewRef(mine.child);
            h->held = mine.held;
        }
        handover_clear(&mine);
        if (st == NULL)
            goto fail;
    }
    else if (core_dict == NULL || !states_ready() || lookup_attr(thread, s_ls_state, &st) < 0) {
        goto fail;
    }
    if (st == NULL || st == Py_None) {
        Py_XDECREF(st);
        Py_RETURN_NONE;
    }
    if (Py_TYPE(st) != state_type) {
        Py_DECREF(st);
        PyErr_SetString(PyExc_TypeError, "_ls_state is not a ThreadState");
        goto fail;
    }
    PyObject *ident = ident_now();
    if (ident == NULL) {
        Py_DECREF(st);
        goto fail;
    }
    slot_set(st, off_ident, ident);
    Py_DECREF(ident);
    /* (not its native id: a system call a thread, which Thread._set_native_id
     * makes already; the record reads it from the Thread, as the Python hook) */
    /* The state holds its Thread while it runs (the Thread is alive then anyway,
     * in threading._active and in this call): no weak reference a thread, which
     * cost its allocation, its release and the Thread's dealloc clearing it.
     * thread_end lets it go, which ends the cycle Thread -> _ls_state -> Thread
     * (a forked child lets go of the other threads' ones: see recorder/__init__);
     * held once the state is bound, so that its end will run. */
    if (bind_new_state(st) < 0) {
        Py_DECREF(st);
        goto fail;
    }
    slot_set(st, off_thread_ref, thread);
    return st;
fail:
    if (PyErr_Occurred() && swallow() < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* thread_end(st, thread): `thread`, whose state is `st`, finished its run: the
 * state remembers it a last time, records ``end`` (recording on) and is marked
 * ended (the writer drops it once drained). */
static PyObject *
thread_end(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !states_ready() || Py_TYPE(args[0]) != state_type) {
        PyErr_SetString(PyExc_TypeError, "thread_end(ThreadState, thread)");
        return NULL;
    }
    PyObject *st = args[0];
    /* (a Thread that never ran Thread.start's path has what its record needs from
     * here; the others are read below) */
    int remembered = !known_slot(st, off_ident) || !known_slot(st, off_thread_ref);
    if (remembered)
        remember_from(st, args[1]);
    if (core_dict != NULL && recording_on()) {
        PyObject *task = task_for(st);
        PyObject *r = NULL;
        if (task != NULL) {
            PyObject *zero = PyLong_FromLong(0);
            if (zero != NULL) {
                PyObject *ev[5] = {st, op_end, st, zero, task};
                r = append(mod, ev, 5);
                Py_DECREF(zero);
            }
            Py_DECREF(task);
        }
        Py_XDECREF(r);
    }
    /* What its record says of its Thread, read now for the last time (the start
     * reads none of it; while it runs the writer reads it itself: see
     * remember_running), unless summary mode holds its end and it may never be
     * shown: three generic attribute lookups a thread per request.  A join, the
     * one thing that shows it after its end with its Thread at hand, reads them
     * then (thread_join_method). */
    if (!remembered && !sf_ended_unshown(st))
        remember_last(st, args[1]);
    /* (its Thread let go: read for the last time above; an ended state is not
     * read again) */
    PyObject *ref = slot(st, off_thread_ref);
    if (ref != NULL && ref != Py_None && !PyWeakref_Check(ref))
        slot_set(st, off_thread_ref, Py_None);
    if (PyErr_Occurred() && swallow() < 0)
        return NULL;
    slot_set(st, off_ended, Py_True);
    Py_RETURN_NONE;
}

/* Sink._define() of a ThreadState, in C: its parents' definitions first (at
 * most MAX_ANCESTORS generations, as there), then its own ``thread`` record,
 * key for key as ThreadState._ls_record() after remember() (its parent null
 * when not defined in this part).  The HTTP server defining a thread a
 * connection spent 18k instructions on this in Python.  Returns its id, or -2
 * when Python must define it (a value that is not plain JSON; nothing of its
 * own written, nothing added to `written`). */
static long long
define_state(PyObject *st, PyObject *written, Out *o, int depth)
{
    if (Py_TYPE(st) != state_type || off_tid < 0 || off_name < 0 || off_parent < 0
            || off_parent_ref < 0 || off_ident < 0 || off_native_id < 0 || off_daemon < 0
            || off_ts < 0 || off_thread_ref < 0)
        return -2;
    PyObject *tid = slot(st, off_tid);
    long long id;
    int in = id_add(tid, written, &id);
    if (in != 0)
        return in > 0 ? id : -2;
    long long pid = -1;  /* (the parent's id, once known written) */
    if (depth <= MAX_ANCESTORS) {
        PyObject *pref = slot(st, off_parent_ref);
        PyObject *parent = pref != NULL && PyWeakref_Check(pref) ? PyWeakref_GetObject(pref) : NULL;
        if (parent != NULL && parent != Py_None) {
            Py_INCREF(parent);
            pid = define_state(parent, written, o, depth + 1);
            Py_DECREF(parent);
            if (pid == -2)  /* (a parent Python must define: so must it be) */
                goto python;
        }
        PyErr_Clear();
    }
    if (off_ended < 0 || slot(st, off_ended) != Py_True)  /* (remembered last at its end) */
        remember_running(st);
    /* (strong references: reading the Thread could run code that renames it) */
    PyObject *vals[6] = {slot(st, off_name), slot(st, off_parent), slot(st, off_ident),
                         slot(st, off_native_id), slot(st, off_daemon), slot(st, off_ts)};
    for (int i = 0; i < 6; i++)
        Py_XINCREF(vals[i]);
    if (vals[0] == Py_None) {  /* (a name never read: see thread_end) */
        PyObject *ident = vals[2] != NULL && vals[2] != Py_None ? vals[2] : tid;
        PyObject *name = PyUnicode_FromFormat("thread-%S", ident);
        if (name != NULL)
            Py_SETREF(vals[0], name);
        PyErr_Clear();
    }
    PyObject *parent_id = vals[1];
    if (parent_id != NULL && parent_id != Py_None) {
        /* (its parent named only when defined in this part: known from above, or
         * looked up) */
        long long p;
        int known = PyLong_CheckExact(parent_id) && pid >= 0 && small_ll(parent_id, &p) && p == pid;
        if (!known && PyObject_IsTrue(parent_id) == 1 && PySet_Contains(written, parent_id) != 1) {
            PyErr_Clear();
            Py_SETREF(vals[1], Py_NewRef(Py_None));
        }
        PyErr_Clear();
    }
    static const char *const keys[] = {",\"name\":", ",\"parent\":", ",\"ident\":",
                                       ",\"native_id\":", ",\"daemon\":", ",\"ts\":"};
    static const size_t key_lens[] = {8, 10, 9, 13, 10, 6};
    size_t at = o->len;
    if (out_reserve(o, 32) < 0) {
        PyErr_Clear();
        goto python_vals;
    }
    LIT(o, "{\"k\":\"thread\",\"id\":");
    out_int(o, id);
    for (int i = 0; i < 6; i++) {
        if (out_reserve(o, key_lens[i]) < 0) {
            o->len = at;
            PyErr_Clear();
            goto python_vals;
        }
        out_str(o, keys[i], key_lens[i]);
        if (out_json_value(o, vals[i]) < 0) {
            o->len = at;  /* (a value not plain: Python writes it all) */
            goto python_vals;
        }
    }
    if (out_reserve(o, 2) < 0) {
        o->len = at;
        PyErr_Clear();
        goto python_vals;
    }
    LIT(o, "}\n");
    for (int i = 0; i < 6; i++)
        Py_XDECREF(vals[i]);
    return id;
python_vals:
    for (int i = 0; i < 6; i++)
        Py_XDECREF(vals[i]);
python:
    if (PySet_Discard(written, tid) < 0)
        PyErr_Clear();
    return -2;
}

/* define_state(state, written, out) -> id, or -2 (see define_state): for
 * Sink._define. */
static PyObject *
define_state_py(PyObject *mod, PyObject *args)
{
    PyObject *st, *written, *out;
    if (!PyArg_ParseTuple(args, "OO!O!", &st, &PySet_Type, &written, &PyByteArray_Type, &out))
        return NULL;
    Out o;
    out_begin(&o);
    long long id = define_state(st, written, &o, 1);
    if (out_flush(&o, out, PyByteArray_GET_SIZE(out)) < 0)
        return NULL;
    return PyLong_FromLongLong(id);
}

/* encode(events, start, tid, written, wsites, ops, out, limit, define=None,
 *        define_site=None) -> int
 *
 * Append the JSON lines of events[start:] to the bytearray `out`, for as long as
 * each event has the common shape (ts, op, obj, site, task), or that and a dict
 * of plain extra fields (see extra_size), with its object,
 * site and task already defined in this file part (or defined on the way by the
 * writer's `define(obj, out)` / `define_site(sid, out)`, when given) and its op
 * in `ops`.  Stops at the first event that needs the Python encoder, or once `out`
 * holds `limit` bytes or more (limit < 0: no limit); returns the index reached. */
/* What encode_events looked up once and reuses: the ids of objects, sites and the
 * task it wrote, the text of ops.  Kept for a whole encode_batches call, not one
 * batch: a server's thread per connection made a batch of 10 events each, which
 * looked its locks, their sites and its ops up again (about 1k instructions a
 * connection).  Objects and sites are compared by address, borrowed: the batches
 * hold them for the call, and an id found written stays so (`written` only
 * grows). */
#define SEEN_OBJS 8
#define SEEN_SITES 4
#define SEEN_OPS 8
#define SEEN_OP_TEXT 24
typedef struct {
    PyObject *obj[SEEN_OBJS];
    long long oid[SEEN_OBJS];
    int next_obj;
    PyObject *site[SEEN_SITES];
    long long sid[SEEN_SITES];
    int next_site;
    PyObject *op[SEEN_OPS], *opb[SEEN_OPS];
    char optext[SEEN_OPS][SEEN_OP_TEXT];  /* an op's text, padded: copied whole */
    int nops;
    PyObject *task;
    long long task_id;
    long long ts_hi;  /* (see out_ts) */
    char ts_hi_text[24];
    int ts_hi_len;
} Seen;

/* Remember `obj`'s id `oid` (written) for the rest of the call, in place of the
 * oldest remembered. */
static inline void
seen_obj_note(Seen *s, PyObject *obj, long long oid)
{
    s->obj[s->next_obj] = obj;
    s->oid[s->next_obj] = oid;
    s->next_obj = (s->next_obj + 1) % SEEN_OBJS;
}

/* (for the tests: encoder_stats) the lookups encode_events made of an op's
 * text, a site and an object's id, not found in a Seen */
static unsigned long long enc_op_lookups, enc_site_lookups, enc_obj_lookups;

static void
seen_init(Seen *s)
{
    memset(s, 0, sizeof(*s));
    s->task_id = -1;
    s->ts_hi = -1;
}

/* encode()'s work, on text `*op` that goes to `out` at `*basep` (define_from
 * moves it there before Python writes a definition): the index reached, or -1
 * with an error (*text still to be freed by the caller). */
static Py_ssize_t
encode_events(PyObject *events, Py_ssize_t start, long long tid, PyObject *written,
              PyObject *wsites, PyObject *ops, PyObject *out, Py_ssize_t *basep, Out *text,
              Py_ssize_t limit, PyObject *define_obj, PyObject *define_site, Seen *seen)
{
    Py_ssize_t n = PyList_GET_SIZE(events);
    Py_ssize_t base = *basep;
    Out o = *text;
    Py_ssize_t i = start;
    /* The extra fields written last, by dict and version (see dict_version): the
     * same unchanged dict again is its text again, copied from where it was
     * written.  (`events` holds the dicts for the whole call.) */
    PyObject *last_extra = NULL;
    uint64_t last_extra_version = 0;
    size_t last_extra_at = 0, last_extra_len = 0;
    unsigned long last_extra_flushes = 0;
    for (; i < n; i++) {
        if (limit >= 0 && base + (Py_ssize_t)o.len >= limit)
            break;
        PyObject *ev = PyList_GET_ITEM(events, i);
        PyObject **item;
        Py_ssize_t size;
        long long t = 0;  /* (0: the time stamp is the int item[0]) */
        if (Py_TYPE(ev) == &Ev_Type) {
            item = ((Ev *)ev)->item;
            size = ((Ev *)ev)->n;
            if (item[0] == NULL)
                t = ((Ev *)ev)->ts;
        }
        else if (PyTuple_CheckExact(ev)) {
            item = &PyTuple_GET_ITEM(ev, 0);
            size = PyTuple_GET_SIZE(ev);
        }
        else {
            break;
        }
        PyObject *extra = NULL;
        size_t extra_len = 0;
        if (size == 6) {
            /* (ts, op, obj, site, task, extra): the extra fields follow the
             * common ones, when every one of them is plain (else Python). */
            extra = item[5];
            if (!PyDict_CheckExact(extra) || is_name_op(item[1]))
                break;
            if (extra == last_extra && dict_version(extra) == last_extra_version
                    && last_extra_version != 0)
                extra_len = last_extra_len;
            else if (extra_size(extra, &extra_len) < 0)
                break;
        }
        else if (size != 5) {
            break;
        }
        PyObject *ts = item[0], *op = item[1];
        PyObject *obj = item[2], *site = item[3];
        PyObject *task = item[4];
        if ((t == 0 && !PyLong_CheckExact(ts)) || !PyLong_CheckExact(site))
            break;
        PyObject *opb = NULL;
        const char *optext = NULL;  /* (opb's text, padded to SEEN_OP_TEXT) */
        for (int j = 0; j < seen->nops; j++) {
            if (seen->op[j] == op) {
                opb = seen->opb[j];
                optext = seen->optext[j];
                break;
            }
        }
        if (opb == NULL) {
            enc_op_lookups++;
            opb = PyDict_GetItemWithError(ops, op);  /* borrowed: `ops` keeps it */
            if (opb == NULL || !PyBytes_Check(opb)) {
                PyErr_Clear();
                break;
            }
            if (seen->nops < SEEN_OPS) {
                seen->op[seen->nops] = op;
                seen->opb[seen->nops] = opb;
                if (PyBytes_GET_SIZE(opb) <= SEEN_OP_TEXT) {
                    optext = seen->optext[seen->nops];
                    memcpy(seen->optext[seen->nops], PyBytes_AS_STRING(opb),
                           (size_t)PyBytes_GET_SIZE(opb));
                }
                seen->nops++;
            }
        }
        /* Consecutive events mostly share their object (or alternate between a
         * few: a queue's mutex and condition), site and task, and an id found
         * written stays so during this call: look each up once. */
        long long oid = -1;
        int known = 0;
        for (int j = 0; j < SEEN_OBJS; j++) {
            if (seen->obj[j] == obj) {
                oid = seen->oid[j];
                known = 1;
                break;
            }
        }
        if (!known) {
            enc_obj_lookups++;
            if (Py_TYPE(obj) == state_type && define_obj != Py_None)
                oid = define_state(obj, written, &o, 1);  /* (its id when written) */
            else
                oid = written_id(obj, written);
            if (oid < 0 && define_obj != Py_None && Py_TYPE(obj) == &Ref_Type)
                oid = define_ref((Ref *)obj, written, wsites, define_site, &o, out, &base, 0, -1);
            else if (oid < 0 && define_obj != Py_None && Py_TYPE(obj) == &Job_Type)
                oid = define_job((Job *)obj, written, &o);
            if (oid == -2 || (oid < 0 && define_obj != Py_None && Py_TYPE(obj) != &Ref_Type))
                oid = define_from(define_obj, obj, &o, out, &base);
            if (oid < 0)
                break;
            seen_obj_note(seen, obj, oid);
        }
        long long sid = -1;
        if (site == int_zero) {  /* (a release: no site) */
            sid = 0;
        }
        else {
            for (int j = 0; j < SEEN_SITES; j++) {
                if (seen->site[j] == site) {
                    sid = seen->sid[j];
                    break;
                }
            }
        }
        if (sid < 0) {
            enc_site_lookups++;
            sid = as_ll(site);
            if (sid == -1 && PyErr_Occurred()) {
                PyErr_Clear();
                break;
            }
            if (sid) {
                int in = PySet_Contains(wsites, site);
                if (in == 0 && define_site != Py_None)
                    in = define_from(define_site, site, &o, out, &base) == sid;
                if (in != 1) {
                    if (in < 0)
                        PyErr_Clear();
                    break;
                }
            }
            seen->site[seen->next_site] = site;
            seen->sid[seen->next_site] = sid;
            seen->next_site = (seen->next_site + 1) % SEEN_SITES;
        }
        long long task_id = -1;
        if (task != Py_None) {
            if (task == seen->task) {
                task_id = seen->task_id;
            }
            else {
                task_id = written_id(task, written);
                if (task_id < 0 && define_obj != Py_None)
                    task_id = define_from(define_obj, task, &o, out, &base);
                if (task_id < 0)
                    break;
                seen->task = task;
                seen->task_id = task_id;
            }
        }
        if (t == 0) {
            t = as_ll(ts);
            if (t == -1 && PyErr_Occurred()) {
                PyErr_Clear();
                break;
            }
        }
        Py_ssize_t oplen = PyBytes_GET_SIZE(opb);
        /* (room for the longest line, and for out_ts's and the op's whole copies) */
        if (out_reserve(&o, 200 + (size_t)oplen + extra_len) < 0) {
            *text = o;
            *basep = base;
            return -1;
        }
        LIT(&o, "{\"k\":\"ev\",\"ts\":");
        out_ts(&o, t, &seen->ts_hi, seen->ts_hi_text, &seen->ts_hi_len);
        LIT(&o, ",\"th\":");
        out_int(&o, tid);
        if (task_id >= 0) {
            LIT(&o, ",\"task\":");
            out_int(&o, task_id);
        }
        LIT(&o, ",\"obj\":");
        out_int(&o, oid);
        LIT(&o, ",\"op\":\"");
        if (optext != NULL)
            memcpy(o.data + o.len, optext, SEEN_OP_TEXT);
        else
            memcpy(o.data + o.len, PyBytes_AS_STRING(opb), (size_t)oplen);
        o.len += (size_t)oplen;
        o.data[o.len++] = '"';
        if (sid) {
            LIT(&o, ",\"site\":");
            out_int(&o, sid);
        }
        if (extra != NULL) {
            uint64_t v = dict_version(extra);
            if (extra == last_extra && v != 0 && v == last_extra_version
                    && o.flushes == last_extra_flushes) {
                memcpy(o.data + o.len, o.data + last_extra_at, last_extra_len);
                o.len += last_extra_len;
            }
            else {
                size_t at = o.len;
                out_extra(&o, extra);
                last_extra = extra;
                last_extra_version = v;
                last_extra_at = at;
                last_extra_len = o.len - at;
                last_extra_flushes = o.flushes;
            }
        }
        LIT(&o, "}\n");
    }
    *text = o;
    *basep = base;
    return PyErr_Occurred() ? -1 : i;  /* (what a define callback raised goes on) */
}

static PyObject *
encode(PyObject *mod, PyObject *args)
{
    PyObject *events, *written, *wsites, *ops, *out;
    PyObject *define_obj = Py_None, *define_site = Py_None;
    Py_ssize_t start, limit;
    long long tid;
    if (!PyArg_ParseTuple(args, "O!nLO!O!O!O!n|OO", &PyList_Type, &events, &start, &tid,
                          &PySet_Type, &written, &PySet_Type, &wsites, &PyDict_Type, &ops,
                          &PyByteArray_Type, &out, &limit, &define_obj, &define_site))
        return NULL;
    Py_ssize_t base = PyByteArray_GET_SIZE(out);
    Out o;
    out_begin(&o);
    Seen seen;
    seen_init(&seen);
    Py_ssize_t i = encode_events(events, start, tid, written, wsites, ops, out, &base, &o,
                                 limit, define_obj, define_site, &seen);
    if (out_flush(&o, out, base) < 0 || i < 0)
        return NULL;
    return PyLong_FromSsize_t(i);
}

/* encode_batches(batches, first, written, wsites, ops, out, limit, define,
 *                define_site) -> (batch, index)
 *
 * The writer's loop over its batches (Sink._drain: _encode for each (state,
 * events)) in one call: each thread's definition (define_state), then its events
 * as encode() writes them.  Stops at the first batch whose state Python must
 * define, or once `out` holds `limit` bytes or more (limit < 0: no limit; the
 * writer then starts a new part), or inside a batch at the first event that
 * needs the Python encoder; returns where: (len(batches), 0) when all are done.
 * A server starting a thread per connection gave the writer one batch per
 * connection, each a round of the Python loop. */
static PyObject *
encode_batches(PyObject *mod, PyObject *args)
{
    PyObject *batches, *written, *wsites, *ops, *out;
    PyObject *define_obj, *define_site;
    Py_ssize_t first, limit;
    if (!PyArg_ParseTuple(args, "O!nO!O!O!O!nOO", &PyList_Type, &batches, &first,
                          &PySet_Type, &written, &PySet_Type, &wsites, &PyDict_Type, &ops,
                          &PyByteArray_Type, &out, &limit, &define_obj, &define_site))
        return NULL;
    Py_ssize_t base = PyByteArray_GET_SIZE(out);
    Out o;
    out_begin(&o);
    Seen seen;
    seen_init(&seen);
    Py_ssize_t bi = first, i = 0;
    for (; bi < PyList_GET_SIZE(batches); bi++) {
        PyObject *b = PyList_GET_ITEM(batches, bi);
        if (limit >= 0 && base + (Py_ssize_t)o.len >= limit)
            break;
        if (!PyTuple_CheckExact(b) || PyTuple_GET_SIZE(b) != 2
                || !PyList_CheckExact(PyTuple_GET_ITEM(b, 1)))
            break;
        PyObject *st = PyTuple_GET_ITEM(b, 0), *events = PyTuple_GET_ITEM(b, 1);
        Py_INCREF(b);  /* (define_from may run Python code) */
        long long tid = define_state(st, written, &o, 1);
        if (tid < 0) {
            Py_DECREF(b);
            break;
        }
        seen_obj_note(&seen, st, tid);  /* (its `end` names it: looked up once) */
        i = encode_events(events, 0, tid, written, wsites, ops, out, &base, &o, limit,
                          define_obj, define_site, &seen);
        Py_ssize_t n = PyList_GET_SIZE(events);
        Py_DECREF(b);
        if (i < 0) {
            out_flush(&o, out, base);
            return NULL;
        }
        progress_ns = mono_now();
        if (i < n)
            break;
        i = 0;
    }
    if (out_flush(&o, out, base) < 0)
        return NULL;
    return Py_BuildValue("(nn)", bi, i);
}

/* pool_stats() -> {pool: (kept, limit, misses)}: see Pool. */
static PyObject *
pool_stats(PyObject *mod, PyObject *Py_UNUSED(ignored))
{
    return Py_BuildValue("{s(iiK)s(iiK)}",
                         "states", spare_states.n, spare_states.limit, spare_states.misses,
                         "buffers", spare_buffers.n, spare_buffers.limit, spare_buffers.misses);
}

/* ev_slabs() -> (slabs, events): the slabs events are made in (see _ev_slabs.c),
 * and the events alive in them. */
static PyObject *
ev_slabs(PyObject *mod, PyObject *Py_UNUSED(ignored))
{
    return Py_BuildValue("(nn)", ev_slabs_in_use + ev_slabs_kept, ev_slots_used);
}

/* encoder_stats() -> (ops, sites, objects, definition texts): see enc_op_lookups. */
static PyObject *
encoder_stats(PyObject *mod, PyObject *Py_UNUSED(ignored))
{
    return Py_BuildValue("(KKKK)", enc_op_lookups, enc_site_lookups, enc_obj_lookups,
                         enc_def_texts);
}

/* take(buf, n) -> list: pop the n oldest events of a thread's buffer (a deque
 * the owning thread appends to meanwhile); they leave the buffered count. */
static PyObject *take_n(PyObject *buf, Py_ssize_t n);

static PyObject *
take(PyObject *mod, PyObject *args)
{
    PyObject *buf;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "On", &buf, &n))
        return NULL;
    return take_n(buf, n);
}

/* The n oldest events of buf, taken (new list). */
static PyObject *
take_n(PyObject *buf, Py_ssize_t n)
{
    PyObject *list = PyList_New(n);
    if (list == NULL)
        return NULL;
    int fast = Py_TYPE(buf) == (PyTypeObject *)deque_type;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *ev = fast && deque_popleft_c != NULL ? deque_popleft_c(buf, NULL)
                       : fast ? PyObject_Vectorcall(deque_popleft, &buf, 1, NULL)
                       : PyObject_CallMethod(buf, "popleft", NULL);
        if (ev == NULL) {  /* (the items not taken yet: an empty list's NULLs, dropped) */
            Py_DECREF(list);
            return NULL;
        }
        buffered_total--;
        taken_total++;
        PyList_SET_ITEM(list, i, ev);
    }
    sf_epoch++;  /* (at once: no other thread ran since the first pop) */
    wake_sent = 0;
    progress_ns = mono_now();
    PyObject_GC_UnTrack(list);  /* (events only: as the buffers, see new_buffer()) */
    return list;
}

static PyObject *op_dropped;

/* Append the batch (st, events) to batches (steals events, which may be NULL
 * after an error).  0, or -1 with an error. */
static int
add_batch(PyObject *batches, PyObject *st, PyObject *events)
{
    if (events == NULL)
        return -1;
    PyObject *b = PyTuple_Pack(2, st, events);
    Py_DECREF(events);
    if (b == NULL)
        return -1;
    int r = PyList_Append(batches, b);
    Py_DECREF(b);
    return r;
}

/* Take snapshot[i] off `states` for each drop[i].  In one pass when `states` still
 * begins with the snapshot (threads only append to it); else (Python code ran
 * meanwhile and changed it: a fork's, a new recording's) each is searched for. */
static int
drop_states(PyObject *states, PyObject *snapshot, const char *drop)
{
    Py_ssize_t n = PyList_GET_SIZE(snapshot);
    int prefix = PyList_GET_SIZE(states) >= n;
    for (Py_ssize_t i = 0; prefix && i < n; i++)
        prefix = PyList_GET_ITEM(states, i) == PyList_GET_ITEM(snapshot, i);
    if (prefix) {
        PyObject *kept = PyList_New(0);
        if (kept == NULL)
            return -1;
        for (Py_ssize_t i = 0; i < n; i++)
            if (!drop[i] && PyList_Append(kept, PyList_GET_ITEM(snapshot, i)) < 0) {
                Py_DECREF(kept);
                return -1;
            }
        int r = PyList_SetSlice(states, 0, n, kept);
        Py_DECREF(kept);
        return r;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!drop[i])
            continue;
        for (Py_ssize_t k = 0; k < PyList_GET_SIZE(states); k++) {
            if (PyList_GET_ITEM(states, k) == PyList_GET_ITEM(snapshot, i)) {
                if (PyList_SetSlice(states, k, k + 1, NULL) < 0)
                    return -1;
                break;
            }
        }
    }
    return 0;
}

/* take_states(states, final) -> batches or None: the writer's Sink._take over the list of
 * thread states, in C (one pass a drain, a state per thread: a thread per
 * request made it a few hundred Python instructions per request).  For each
 * state: its buffered events; the closing of its gap when it ended (or `final`);
 * the events it dropped since the last report; an ended state with nothing left
 * is taken off `states`. */
static PyObject *
take_states(PyObject *mod, PyObject *args)
{
    PyObject *states;
    int final;
    if (!PyArg_ParseTuple(args, "O!p", &PyList_Type, &states, &final))
        return NULL;
    /* (None: the Python loop takes them -- a ThreadState of another type than
     * the one configured, as in a subinterpreter, which shares this module) */
    if (!states_ready())
        Py_RETURN_NONE;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(states); i++)
        if (Py_TYPE(PyList_GET_ITEM(states, i)) != state_type)
            Py_RETURN_NONE;
    /* (a drain: the pools' sizes for the next interval) */
    ev_slabs_drained();
    pool_drained(&spare_states, pool_decref);
    pool_drained(&spare_buffers, pool_decref);
    PyObject *snapshot = PyList_GetSlice(states, 0, PY_SSIZE_T_MAX);
    PyObject *batches = snapshot != NULL ? PyList_New(0) : NULL;
    /* drop[i]: snapshot[i] is taken off `states` (all at once, at the end: one at a
     * time, a thread per request made it quadratic in the threads of a drain) */
    char *drop = batches != NULL ? PyMem_Calloc((size_t)PyList_GET_SIZE(snapshot) + 1, 1)
                                 : NULL;
    Py_ssize_t n_drop = 0;
    if (drop == NULL) {
        if (batches != NULL)
            PyErr_NoMemory();
        goto error;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(snapshot); i++) {
        PyObject *st = PyList_GET_ITEM(snapshot, i);
        /* Read `ended` before the length: the thread appends its end event before
         * it sets ended, so an empty buffer of an ended thread stays empty. */
        int ended = slot(st, off_ended) == Py_True;
        PyObject *buf = slot(st, off_buf);
        Py_ssize_t n = buf == Py_None ? 0 : buf != NULL ? PyObject_Size(buf) : -1;
        if (n < 0) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_AttributeError, "buf");
            goto error;
        }
        if (n > 0) {
            Py_INCREF(buf);
            PyObject *events = take_n(buf, n);
            Py_DECREF(buf);
            if (add_batch(batches, st, events) < 0)
                goto error;
        }
        PyObject *gap = slot(st, off_gap);
        if (gap != NULL && gap != Py_None && (ended || final)) {
            PyObject *ev = PyObject_CallOneArg(end_gap_fn, st);
            PyObject *one = ev != NULL ? PyList_New(1) : NULL;
            if (one == NULL) {
                Py_XDECREF(ev);
                goto error;
            }
            PyList_SET_ITEM(one, 0, ev);
            if (add_batch(batches, st, one) < 0)
                goto error;
        }
        PyObject *dropped = slot(st, off_dropped), *reported = slot(st, off_dropped_reported);
        PyObject *lost = dropped != NULL && dropped == reported  /* (none: the usual) */
            ? Py_NewRef(int_zero)
            : dropped != NULL && reported != NULL ? PyNumber_Subtract(dropped, reported) : NULL;
        if (lost == NULL) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_AttributeError, "dropped");
            goto error;
        }
        int some = lost == int_zero ? 0 : PyObject_RichCompareBool(lost, int_zero, Py_GT);
        if (some > 0) {
            PyObject *sum = PyNumber_Add(reported, lost);
            PyObject *ts = sum != NULL ? now_ns() : NULL;
            PyObject *ev = ts != NULL ? PyTuple_Pack(3, ts, op_dropped, lost) : NULL;
            Py_XDECREF(ts);
            if (ev == NULL) {
                Py_XDECREF(sum);
                Py_DECREF(lost);
                goto error;
            }
            slot_set(st, off_dropped_reported, sum);
            Py_DECREF(sum);
            PyObject *one = PyList_New(1);
            if (one == NULL) {
                Py_DECREF(ev);
                Py_DECREF(lost);
                goto error;
            }
            PyList_SET_ITEM(one, 0, ev);
            if (add_batch(batches, st, one) < 0) {
                Py_DECREF(lost);
                goto error;
            }
        }
        Py_DECREF(lost);
        if (some < 0)
            goto error;
        if (!some && n == 0 && ended) {
            drop[i] = 1;
            n_drop++;
            spare_buffer(st);
        }
    }
    if (n_drop > 0 && drop_states(states, snapshot, drop) < 0)
        goto error;
    for (Py_ssize_t i = 0; n_drop > 0 && i < PyList_GET_SIZE(snapshot); i++) {
        if (drop[i]) {  /* (the snapshot's reference, often the last) */
            PyObject *st = PyList_GET_ITEM(snapshot, i);
            PyList_SET_ITEM(snapshot, i, Py_NewRef(Py_None));
            let_go_of_state(st);
        }
    }
    PyMem_Free(drop);
    Py_DECREF(snapshot);
    return batches;
error:
    PyMem_Free(drop);
    Py_XDECREF(snapshot);
    Py_XDECREF(batches);
    return NULL;
}

/* untrack(container): hide a buffer of events from the cyclic GC (see
 * recorder/_core.py new_buffer()). */
static PyObject *
untrack(PyObject *mod, PyObject *obj)
{
    untrack_if_tracked(obj);
    Py_RETURN_NONE;
}

/* typed_method(cls, descr): a method descriptor of `cls` for the C function of
 * `descr`, a method descriptor of a base of cls (`descr` itself otherwise).
 * Called on an instance of exactly cls, its type check is one comparison and
 * the interpreter's call sites specialise; a base's descriptor (LockCore's on a
 * traced Lock, `object`'s as add_methods_for_any_class makes them) walks the
 * instance's MRO at every call, and its call sites fall back to the generic
 * call every time. */
static PyObject *
typed_method(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyType_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "typed_method(cls, descr)");
        return NULL;
    }
    PyTypeObject *cls = (PyTypeObject *)args[0];
    PyObject *descr = args[1];
    if (Py_TYPE(descr) != &PyMethodDescr_Type || PyDescr_TYPE(descr) == cls
            || !PyType_IsSubtype(cls, PyDescr_TYPE(descr))
            || (((PyMethodDescrObject *)descr)->d_method->ml_flags & METH_METHOD))
        return Py_NewRef(descr);
    return PyDescr_NewMethod(cls, ((PyMethodDescrObject *)descr)->d_method);
}

/* ----------------------------------------------------------------- module */

static PyMethodDef module_methods[] = {
    {"held_check", held_check, METH_O,
     "held_check(loop): the check of the locks tasks of `loop` still hold (see set_held_check)"},
    {"set_held_check", set_held_check, METH_VARARGS,
     "set_held_check(check or None, context): check(list of (lock, task, site)) of the locks"
     " tasks still held when a loop iteration ended"},
    {"set_task_acquired", set_task_acquired, METH_O,
     "set_task_acquired(fn or None): fn(lock, task, site) after an acquire by a task"},
    {"configure", configure, METH_VARARGS,
     "configure(core_module, acquire_op, release_op): bind to recorder._core."},
    {"encode", encode, METH_VARARGS,
     "encode(events, start, tid, written, wsites, ops, out, limit, define=None, define_site=None)"
     " -> index reached"},
    {"take", take, METH_VARARGS, "take(buf, n) -> the n oldest events of buf"},
    {"take_states", take_states, METH_VARARGS,
     "take_states(states, final) -> [(state, events)]: the writer's take, in C"},
    {"untrack", untrack, METH_O, "untrack(container): the cyclic GC no longer scans it"},
    {"typed_method", (PyCFunction)(void (*)(void))typed_method, METH_FASTCALL,
     "typed_method(cls, descr): descr's C method as a method descriptor of cls"},
    {"set_lock_creators", set_lock_creators, METH_VARARGS,
     "set_lock_creators(threading_file, owner_code_ids, event_init_code, thread_init_code)"},
    {"in_thread_internals", in_thread_internals, METH_NOARGS,
     "True when the primitive being made is a Thread's own _started Event's"},
    {"init_condition", (PyCFunction)(void (*)(void))init_condition, METH_FASTCALL,
     "init_condition(cond, lock, own_lock) -> True when defined here"},
    {"init_lock", (PyCFunction)(void (*)(void))init_lock, METH_FASTCALL,
     "init_lock(lock, inner, type, reentrant) -> True when defined here"},
    {"set_condition_hooks", set_condition_hooks, METH_VARARGS,
     "set_condition_hooks(original_notify, original_notify_all): what CondHooks calls"},
    {"define_state", define_state_py, METH_VARARGS,
     "define_state(thread_state, written, out) -> id, or -2: Python must define it"},
    {"set_constructors", set_constructors, METH_VARARGS,
     "set_constructors(orig_condition, traced_rlock, condition_rest, py_condition_init,"
     " crlock, py_rlock_init, lock_type, allocate_lock)"},
    {"lock_new", (PyCFunction)(void (*)(void))lock_new, METH_FASTCALL | METH_KEYWORDS,
     "lock_new(cls): Lock.__new__ where threading.Lock is a class (3.13+)"},
    {"set_py_lock_new", set_py_lock_new, METH_O,
     "set_py_lock_new(py_new): what lock_new calls for other arguments"},
    {"set_condition_wait", set_condition_wait, METH_O,
     "set_condition_wait(py_wait): the Python Condition.wait (odd arguments)"},
    {"set_thread_join", set_thread_join, METH_VARARGS,
     "set_thread_join(orig_join, threading._active): what the C Thread.join calls and reads"},
    {"set_thread_start", set_thread_start, METH_VARARGS,
     "set_thread_start(original_start, install_jobs, original_bootstrap_inner):"
     " what thread_start_method and thread_bootstrap_method call"},
    {"untrack_ints", untrack_ints, METH_O,
     "untrack_ints(s) -> s: an empty set to hold ints only, hidden from the GC"},
    {"set_plain_lock_types", set_plain_lock_types, METH_O,
     "set_plain_lock_types(types): traced locks of these exact types are hidden from the GC"},
    {"define", (PyCFunction)(void (*)(void))define_c, METH_FASTCALL | METH_KEYWORDS,
     "define(obj, kind, type_, depth=3, **fields): recorder._core.define, from the caches"},
    {"attach_ref", attach_ref_py, METH_VARARGS,
     "attach_ref(obj, id, definition): the Ref its events name (see Ref)"},
    {"_gsite_one_set", gsite_one_set_py, METH_O,
     "_gsite_one_set(flag): (tests) every frame path hashes into one pair of the global site table"},
    {"site_stats", site_stats, METH_NOARGS,
     "site_stats() -> (sites found in a lock's memos, in the table of walks, by a frame walk)"},
    {"define_stats", define_stats, METH_NOARGS,
     "define_stats() -> (definitions made from the caches, definitions left to Python)"},
    {"site_id", (PyCFunction)(void (*)(void))site_id_c, METH_FASTCALL,
     "site_id(depth=2) -> the site id of the first frame outside the libraries"},
    {"append", (PyCFunction)(void (*)(void))append, METH_FASTCALL,
     "append(st, op, obj, site, task, extra=None, ts=None): buffer one event or count a loss"},
    {"emit_here", (PyCFunction)(void (*)(void))emit_here, METH_FASTCALL,
     "emit_here(op, obj, depth, extra=None): emit(op, obj, site_id(depth), extra) in one call"},
    {"set_job_hooks", set_job_hooks, METH_VARARGS,
     "set_job_hooks(init, run, names, name_of, submit_extra, result, exception):"
     " what job_init, job_run, job_result and job_exception use"},
    {"set_simplequeue_hooks", set_simplequeue_hooks, METH_VARARGS,
     "set_simplequeue_hooks(put, get, Empty): the originals simplequeue_put/get call"},
    {"set_event_hooks", set_event_hooks, METH_O,
     "set_event_hooks(py_wait): Event.wait's Python version, for odd arguments"},
    {"set_semaphore_hooks", set_semaphore_hooks, METH_VARARGS,
     "set_semaphore_hooks(acquire, release, bounded_release, acquire_waiting)"},
    {"job_passed", job_passed, METH_O,
     "job_passed(future): a pass on the condition of a future already done"},
    {"configure_aio", configure_aio, METH_VARARGS,
     "configure_aio(current_tasks, get_running_loop, current_task, rec_of, site_by_lasti, site_from,"
     " task_id=None)"},
    {"aio_event", (PyCFunction)(void (*)(void))aio_event, METH_FASTCALL,
     "aio_event(op, lock, want_site): record an event of the running task"},
    {"configure_buffers", configure_buffers, METH_VARARGS,
     "configure_buffers(budget, wake_at, buffered, waker, min_thread_cap, high_water, pause_ns, stuck_ns)"},
    {"progress", progress, METH_NOARGS, "progress(): the writer wrote events (it is not stuck)"},
    {"buffered", buffered, METH_NOARGS, "buffered() -> events in all buffers"},
    {"taken_count", taken_count, METH_NOARGS, "taken_count() -> events the writer took, ever"},
    {"encode_batches", encode_batches, METH_VARARGS,
     "encode_batches(batches, first, written, wsites, ops, out, limit, define, define_site)"
     " -> (batch, index): Sink._drain's loop (see there)"},
    {"dumps", dumps, METH_O,
     "dumps(record) -> bytes: one JSON line, or None if a str in it is not valid Unicode"},
    {"raw_locks", raw_locks, METH_NOARGS,
     "raw_locks() -> (lock, rlock): whether the inner lock types are driven directly"},
    {"rearm", rearm, METH_NOARGS, "rearm(): the next crossing of wake_at wakes the writer"},
    {"wake_after_next", wake_after_next, METH_NOARGS,
     "wake_after_next(): the next event buffered wakes the writer, once"},
    {"summary_start", summary_start, METH_VARARGS,
     "summary_start(threshold_ns or None, instances_per_class=64): summary mode's filter on (empty tables) or off"},
    {"definition_prototypes", definition_prototypes, METH_NOARGS,
     "definition_prototypes() -> int: prototypes define_c made, for tests"},
    {"pool_stats", pool_stats, METH_NOARGS,
     "pool_stats() -> {pool: (kept, limit, misses)}: the freed objects kept, for tests"},
    {"ev_slabs", ev_slabs, METH_NOARGS,
     "ev_slabs() -> (slabs, events): the memory events are made in, for tests"},
    {"encoder_stats", encoder_stats, METH_NOARGS,
     "encoder_stats() -> (ops, sites, objects, definition texts): the encoder's work, for tests"},
    {"summary_stats", summary_stats, METH_NOARGS,
     "summary_stats() -> (classes_read, member_scans, slots_freed): the filter's work, for tests"},
    {"summary_due", summary_due, METH_NOARGS,
     "summary_due() -> whether the filter's tables should be taken now"},
    {"summary_spilled", summary_spilled, METH_NOARGS,
     "summary_spilled() -> [(state, event)] or None: permit acquires the Summary must see first"},
    {"summary_waits", summary_waits, METH_VARARGS,
     "summary_waits(now_ns, final): held-back lock waits open for the threshold into their buffers"},
    {"summary_first", summary_first, METH_VARARGS,
     "summary_first(obj, key, waiter) -> int: of the first signals (or waits) on obj the filter orders by, how many key made"},
    {"summary_shown", summary_shown, METH_O,
     "summary_shown(x) -> [(state, event)] or None: x's lifecycle events held back by the filter"},
    {"summary_take", summary_take, METH_O,
     "summary_take(final) -> (deps, holds, resent): the filter's counts since the last take"},
    {"forget_code", forget_code, METH_O, "forget_code(id(code)): that code object is being freed"},
    {"forget_sites", forget_sites, METH_NOARGS,
     "forget_sites(): the Python site caches were cleared; forget what C kept of them"},
    {"thread_start", thread_start, METH_O,
     "thread_start(thread): record that the calling thread starts `thread`"},
    {"thread_begin", thread_begin, METH_O,
     "thread_begin(thread) -> its ThreadState bound to this new thread, or None"},
    {"thread_end", (PyCFunction)(void (*)(void))thread_end, METH_FASTCALL,
     "thread_end(st, thread): the thread finished its run"},
    {"current_state", current_state_c, METH_NOARGS,
     "current_state(): the calling thread's ThreadState (registered on first use)"},
    {"bound_state", bound_state, METH_NOARGS,
     "bound_state(): the calling thread's ThreadState, or None when it has none"},
    {"new_state_key", new_state_key, METH_NOARGS,
     "new_state_key(): forget every thread's binding (a new recording or a fork)"},
    {"own_state", own_state, METH_O,
     "own_state(st): st is now the calling thread's state (its cache entry only)"},
    {"invalidate", invalidate, METH_NOARGS,
     "invalidate(): thread states were bound or forgotten; look them up again"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT, "recorder._speedups",
    "C versions of the recorder's hot path and writer encoder.", -1, module_methods,
    NULL, NULL, NULL, NULL,
};

static PyObject *
intern(const char *s)
{
    return PyUnicode_InternFromString(s);
}

PyMODINIT_FUNC
PyInit__speedups(void)
{
    if (PyType_Ready(&Ev_Type) < 0 || PyType_Ready(&Ref_Type) < 0 || PyType_Ready(&Job_Type) < 0
        || PyType_Ready(&LockCore_Type) < 0 || PyType_Ready(&CondHooks_Type) < 0
        || PyType_Ready(&LockFactory_Type) < 0)
        return NULL;
    if (!(s_ON = intern("ON")) || !(s_tls = intern("_tls")) || !(s_st = intern("st"))
        || !(s_buf = intern("buf")) || !(s_gap = intern("gap"))
        || !(s_aio = intern("aio"))
        || !(s_ls_acquire = intern("_ls_acquire"))
        || !(s_ls_acquire_slow = intern("_ls_acquire_slow")) || !(s_ls_id = intern("_ls_id"))
        || !(s_state_key = intern("lockscope.recorder.state")) || !(s_ls_rec = intern("_ls_rec"))
        || !(s_current_task_id = intern("current_task_id"))
        || !(s_name = intern("name")) || !(s_tid = intern("tid"))
        || !(s_ls_def = intern("_ls_def")) || !(s_ls_def_early = intern("_ls_def_early")) || !(s_k = intern("k")) || !(s_id = intern("id"))
        || !(s_type = intern("type")) || !(s_site = intern("site")) || !(s_ts = intern("ts"))
        || !(s_th = intern("th")) || !(s_expr = intern("expr")) || !(s_lib = intern("lib"))
        || !(s_user_site = intern("user_site")) || !(s_ls_ref = intern("_ls_ref"))
        || !(s_locked = intern("locked")) || !(s_acquire = intern("acquire"))
        || !(s_release = intern("release")) || !(s_is_owned = intern("_is_owned"))
        || !(s_signal = intern("signal")) || !(s_sig = intern("sig")) || !(s_n = intern("n"))
        || !(s_notify = intern("notify")) || !(s_notify_all = intern("notify_all"))
        || !(s_waiters = intern("_waiters"))
        || !(s_a_name = intern("_name")) || !(s_ls_state = intern("_ls_state"))
        || !(s_a_started = intern("_started"))
        || !(s_a_target = intern("_target")) || !(s_a_module = intern("__module__"))
        || !(s_pool_module = intern("concurrent.futures.thread"))
        || !(s_states = intern("states")) || !(s_on_bind = intern("on_bind"))
        || !(s_bind_state = intern("bind_state")) || !(op_start = intern("start"))
        || !(op_end = intern("end")) || !(op_dropped = intern("dropped"))
        || !(op_join = intern("join")) || !(op_wait_begin = intern("wait-begin"))
        || !(op_wait_end = intern("wait-end")) || !(s_a_is_alive = intern("is_alive"))
        || !(s_a_qualname = intern("__qualname__"))
        || !(s_k_timeout = intern("timeout")) || !(s_k_outcome = intern("outcome"))
        || !(s_k_error = intern("error")) || !(s_v_ok = intern("ok"))
        || !(s_v_timeout = intern("timeout")) || !(s_v_error = intern("error"))
        || !(s_a_daemonic = intern("_daemonic")) || !(s_a_ident = intern("_ident"))
        || !(s_a_native_id = intern("_native_id"))
        || !(s_kind_lock = intern("lock")) || !(s_kind_resource = intern("resource"))
        || !(s_on_thread_end = intern("on_thread_end"))
        || !(s_type_rlock = intern("threading.RLock")) || !(s_type_lock = intern("threading.Lock")) || !(s_ls_define = intern("_ls_define"))
        || !(s_type_condition = intern("threading.Condition")) || !(s_owner = intern("owner"))
        || !(s_ls_deps = intern("_ls_deps"))
        || !(kw_reentrant = Py_BuildValue("(N)", intern("reentrant")))
        || !(kw_lock = Py_BuildValue("(N)", intern("lock")))
        || !(kw_lock_owner = Py_BuildValue("(NN)", intern("lock"), intern("owner")))
        || !(kw_lock_owner_role = Py_BuildValue("(NNN)", intern("lock"), intern("owner"),
                                                intern("role")))
        || !(int_four = PyLong_FromLong(4)) || !(s_ls_nconds = intern("_ls_nconds"))
        || !(s_self = intern("self")) || !(queue_roles[0] = intern("not_empty"))
        || !(queue_prefix = intern("queue."))
        || !(kw_reentrant_owner = Py_BuildValue("(NN)", intern("reentrant"), intern("owner")))
        || !(queue_roles[1] = intern("not_full")) || !(queue_roles[2] = intern("all_tasks_done"))
        || !(int_three = PyLong_FromLong(3)) || !(s_ls_interrupted = intern("_ls_interrupted"))
        || !(op_wait = intern("wait")) || !(op_timeout = intern("timeout"))
        || !(s_release_save = intern("_release_save"))
        || !(s_acquire_restore = intern("_acquire_restore"))
        || !(s_append = intern("append")) || !(s_remove = intern("remove")))
        return NULL;
    if (!(common_keys = PySet_New(NULL)))
        return NULL;
    for (int k = 0; k < 3; k++)
        if (!(def_site_key_objs[k] = intern(def_site_keys[k])))
            return NULL;
    static const char *const common[] = {"k", "ts", "th", "task", "obj", "op", "site"};
    for (size_t i = 0; i < sizeof(common) / sizeof(common[0]); i++) {
        PyObject *k = intern(common[i]);
        if (k == NULL || PySet_Add(common_keys, k) < 0)
            return NULL;
        Py_DECREF(k);
    }
    if (!(int_zero = PyLong_FromLong(0)) || !(int_one = PyLong_FromLong(1))
        || !(int_two = PyLong_FromLong(2)))
        return NULL;
    PyObject *collections = PyImport_ImportModule("collections");
    if (collections == NULL)
        return NULL;
    deque_type = PyObject_GetAttrString(collections, "deque");
    if (deque_type != NULL && (empty_args = PyTuple_New(0)) == NULL)
        Py_CLEAR(deque_type);
    Py_DECREF(collections);
    if (deque_type == NULL)
        return NULL;
    if (!(deque_append = PyObject_GetAttrString(deque_type, "append"))
        || !(deque_popleft = PyObject_GetAttrString(deque_type, "popleft")))
        return NULL;
    deque_append_c = method_c(deque_append, METH_O);
    deque_popleft_c = method_c(deque_popleft, METH_NOARGS);
    if (sf_init() < 0 || raw_init() < 0)
        return NULL;
    PyObject *m = PyModule_Create(&speedups_module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&LockCore_Type);
    Py_INCREF(&Ref_Type);
    Py_INCREF(&Ev_Type);
    if (PyModule_AddObjectRef(m, "Job", (PyObject *)&Job_Type) < 0
        || PyModule_AddObject(m, "Ref", (PyObject *)&Ref_Type) < 0
        || PyModule_AddObject(m, "Ev", (PyObject *)&Ev_Type) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&CondHooks_Type);
    if (PyModule_AddObject(m, "CondHooks", (PyObject *)&CondHooks_Type) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    if (PyModule_AddObject(m, "LockCore", (PyObject *)&LockCore_Type) < 0
        || PyModule_AddObjectRef(m, "LockFactory", (PyObject *)&LockFactory_Type) < 0
        || PyModule_AddIntConstant(m, "API", API_VERSION) < 0
#ifdef LS_RAW_FRAMES
        || PyModule_AddStringConstant(m, "FRAMES", "raw") < 0
#else
        || PyModule_AddStringConstant(m, "FRAMES", "public") < 0
#endif
        || PyModule_AddObjectRef(m, "SUMMARY_COUNTED", sf_counted) < 0 || jobs_init(m) < 0
        || simplequeue_init(m) < 0 || semaphore_init(m) < 0
        || event_init(m) < 0
        || add_methods_for_any_class(m, (PyMethodDef *[]){&thread_start_method_def,
                                                          &thread_bootstrap_method_def,
                                                          &thread_join_method_def,
                                                          &condition_wait_method_def},
                                     (const char *const[]){"thread_start_method",
                                                           "thread_bootstrap_method",
                                                           "thread_join_method",
                                                           "condition_wait_method"}, 4) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
