/* The traced threading.Semaphore's acquire and release in C
 * (recorder/_threading.py's _SemaphoreMixin; #included by _speedups.c after
 * _simplequeue_fast.c).
 *
 * ThreadPoolExecutor.submit tries its idle semaphore (acquire(timeout=0)) and
 * each worker releases it after a job: the Python wrappers ran about 56
 * bytecodes a job.  Same events and sites; a blocking acquire that must wait
 * goes to the Python method (_ls_acquire_waiting), which records the wait. */

static PyObject *sem_orig_acquire;       /* threading.Semaphore.acquire */
static PyObject *sem_orig_release[2];    /* Semaphore's, BoundedSemaphore's release */
static PyObject *sem_acquire_waiting;    /* _SemaphoreMixin._ls_acquire_waiting */
static PyObject *s_blocking, *op_try_fail;

/* set_semaphore_hooks(acquire, release, bounded_release, acquire_waiting). */
static PyObject *
set_semaphore_hooks(PyObject *mod, PyObject *args)
{
    PyObject *acquire, *release, *bounded_release, *waiting;
    if (!PyArg_ParseTuple(args, "OOOO", &acquire, &release, &bounded_release, &waiting))
        return NULL;
    Py_XSETREF(sem_orig_acquire, Py_NewRef(acquire));
    Py_XSETREF(sem_orig_release[0], Py_NewRef(release));
    Py_XSETREF(sem_orig_release[1], Py_NewRef(bounded_release));
    Py_XSETREF(sem_acquire_waiting, Py_NewRef(waiting));
    Py_RETURN_NONE;
}

/* Record `op` on the semaphore at the caller's site (site: 1) or none: 0, or -1
 * when what stopped it is not an Exception. */
static int
sem_emit(PyObject *op, PyObject *sem, int site)
{
    PyObject *eargs[3] = {op, sem, site ? int_one : int_minus_one};
    PyObject *r = emit_here(NULL, eargs, 3);
    if (r == NULL)
        return swallow();
    Py_DECREF(r);
    return 0;
}

/* The original acquire(self, blocking[, timeout]) as a C truth value, or -1. */
static int
sem_try(PyObject *self, PyObject *blocking, PyObject *timeout)
{
    PyObject *args[3] = {self, blocking, timeout};
    return truth_of(PyObject_Vectorcall(sem_orig_acquire, args, timeout != NULL ? 3 : 2, NULL));
}

static PyObject *
sem_acquire(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (sem_orig_acquire == NULL || sem_acquire_waiting == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "traced Semaphore without its original acquire");
        return NULL;
    }
    PyObject *blocking = Py_True, *timeout = Py_None;
    Py_ssize_t nkw = kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0;
    int usual = nargs <= 2;
    if (nargs >= 1)
        blocking = args[0];
    if (nargs == 2)
        timeout = args[1];
    for (Py_ssize_t i = 0; usual && i < nkw; i++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, i);
        if (nargs < 1 && PyUnicode_Compare(key, s_blocking) == 0)
            blocking = args[nargs + i];
        else if (nargs < 2 && PyUnicode_Compare(key, s_timeout) == 0)
            timeout = args[nargs + i];
        else
            usual = 0;
    }
    if (!usual) {  /* not acquire's arguments: the original says what is wrong */
        PyErr_Clear();
        return call_with_self(sem_orig_acquire, self, args, nargs, kwnames);
    }
    int block = PyObject_IsTrue(blocking);
    if (block < 0)
        return NULL;
    if (!block && timeout != Py_None) {
        PyErr_SetString(PyExc_ValueError, "can't specify timeout for non-blocking acquire");
        return NULL;
    }
    int is_try = !block;
    if (!is_try && timeout != Py_None) {
        PyObject *zero = PyLong_FromLong(0);
        is_try = zero == NULL ? -1 : PyObject_RichCompareBool(timeout, zero, Py_LE);
        Py_XDECREF(zero);
        if (is_try < 0)
            return NULL;
    }
    /* A try (non-blocking, or a timeout of zero or less: ThreadPoolExecutor.submit
     * does one every time) calls the original once, as the program does; a
     * blocking acquire first tries without blocking, so that one that gets the
     * semaphore at once is no wait. */
    int ok = is_try && block ? sem_try(self, Py_True, timeout) : sem_try(self, Py_False, NULL);
    if (ok < 0)
        return NULL;
    if (ok || is_try) {
        if (core_dict != NULL && recording_on() ? sem_emit(ok ? s_acquire : op_try_fail, self, 1) < 0
                : PyErr_Occurred() && swallow() < 0)
            return NULL;
        return PyBool_FromLong(ok);
    }
    PyObject *wargs[2] = {self, timeout};
    return PyObject_Vectorcall(sem_acquire_waiting, wargs, 2, NULL);
}

/* release(self, n=1) of Semaphore (which: 0) or BoundedSemaphore (1): the
 * original, then a ``release`` event (no site) for each of the n. */
static PyObject *
sem_release(int which, PyObject *self, PyObject *const *args, Py_ssize_t nargs,
            PyObject *kwnames)
{
    PyObject *orig = sem_orig_release[which];
    if (orig == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "traced Semaphore without its original release");
        return NULL;
    }
    PyObject *r = call_with_self(orig, self, args, nargs, kwnames);
    if (r == NULL)
        return NULL;
    if (core_dict == NULL || !recording_on()) {
        if (PyErr_Occurred() && swallow() < 0)
            Py_CLEAR(r);
        return r;
    }
    long n = 1;
    if (nargs + (kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0) == 1) {
        n = PyLong_AsLong(args[0]);
        if (n == -1 && PyErr_Occurred() && swallow() < 0) {
            Py_DECREF(r);
            return NULL;
        }
    }
    for (long i = 0; i < n; i++)
        if (sem_emit(s_release, self, 0) < 0) {
            Py_DECREF(r);
            return NULL;
        }
    return r;
}

static PyObject *
sem_release_plain(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return sem_release(0, self, args, nargs, kwnames);
}

static PyObject *
sem_release_bounded(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return sem_release(1, self, args, nargs, kwnames);
}

static PyMethodDef sem_acquire_def = {
    "acquire", (PyCFunction)(void (*)(void))sem_acquire, METH_FASTCALL | METH_KEYWORDS,
    "acquire($self, /, blocking=True, timeout=None)\n--\n\n"
    "Acquire the semaphore (recorded: lockscope)."};
static PyMethodDef sem_release_defs[2] = {
    {"release", (PyCFunction)(void (*)(void))sem_release_plain, METH_FASTCALL | METH_KEYWORDS,
     "release($self, /, n=1)\n--\n\nRelease the semaphore n times (recorded: lockscope)."},
    {"release", (PyCFunction)(void (*)(void))sem_release_bounded, METH_FASTCALL | METH_KEYWORDS,
     "release($self, /, n=1)\n--\n\nRelease the semaphore n times (recorded: lockscope)."},
};

/* The module's semaphore_acquire, semaphore_release, bounded_semaphore_release. */
static int
semaphore_init(PyObject *m)
{
    if (!(s_blocking = intern("blocking")) || !(op_try_fail = intern("try-fail")))
        return -1;
    static const char *const names[3] = {"semaphore_acquire", "semaphore_release",
                                         "bounded_semaphore_release"};
    PyMethodDef *defs[3] = {&sem_acquire_def, &sem_release_defs[0], &sem_release_defs[1]};
    return add_methods_for_any_class(m, defs, names, 3);
}
