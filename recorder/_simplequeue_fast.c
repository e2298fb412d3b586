/* The traced queue.SimpleQueue's put and get in C (recorder/_simplequeue.py;
 * #included by _speedups.c after _jobs_fast.c).
 *
 * ThreadPoolExecutor hands every job to its workers through a SimpleQueue: the
 * Python put and get ran about 50 bytecodes a job.  Same events, fields and
 * sites as the Python methods, which stay for the pure-Python recorder: put is a
 * ``signal`` (sig: put); a blocking get that finds the queue empty is a
 * ``wait-begin`` / ``wait-end`` (outcome ok, timeout or error). */

static PyObject *sq_orig_put, *sq_orig_get, *sq_empty;
static PyObject *sq_put_extra, *sq_outcome[3];  /* {"sig": "put"}; ok, timeout, error */
static PyObject *s_block, *s_timeout, *op_wait_begin, *op_wait_end;

/* set_simplequeue_hooks(put, get, Empty): the original methods and queue.Empty. */
static PyObject *
set_simplequeue_hooks(PyObject *mod, PyObject *args)
{
    PyObject *put, *get, *empty;
    if (!PyArg_ParseTuple(args, "OOO", &put, &get, &empty))
        return NULL;
    Py_XSETREF(sq_orig_put, Py_NewRef(put));
    Py_XSETREF(sq_orig_get, Py_NewRef(get));
    Py_XSETREF(sq_empty, Py_NewRef(empty));
    Py_RETURN_NONE;
}

static PyObject *
sq_put(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (sq_orig_put == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "traced SimpleQueue without its original put");
        return NULL;
    }
    Py_ssize_t n = nargs + (kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0);
    if (n >= 1 && n <= 3) {  /* (else the original raises its own TypeError) */
        PyObject *eargs[4] = {s_signal, self, int_one, sq_put_extra};
        PyObject *r = emit_here(NULL, eargs, 4);
        if (r == NULL)
            return NULL;
        Py_DECREF(r);
    }
    return call_with_self(sq_orig_put, self, args, nargs, kwnames);
}

/* get's block and timeout from its vectorcall arguments: 0, or -1 when they are
 * not get's (the original then says what is wrong). */
static int
sq_get_args(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
            PyObject **block, PyObject **timeout)
{
    if (nargs > 2)
        return -1;
    if (nargs >= 1)
        *block = args[0];
    if (nargs == 2)
        *timeout = args[1];
    Py_ssize_t nkw = kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t i = 0; i < nkw; i++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, i);
        if (nargs < 1 && PyUnicode_Compare(key, s_block) == 0)
            *block = args[nargs + i];
        else if (nargs < 2 && PyUnicode_Compare(key, s_timeout) == 0)
            *timeout = args[nargs + i];
        else {
            PyErr_Clear();
            return -1;
        }
    }
    return 0;
}

static PyObject *
sq_get(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (sq_orig_get == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "traced SimpleQueue without its original get");
        return NULL;
    }
    PyObject *block = Py_True, *timeout = Py_None;
    if (sq_get_args(args, nargs, kwnames, &block, &timeout) < 0)
        return call_with_self(sq_orig_get, self, args, nargs, kwnames);
    int blocking = PyObject_IsTrue(block);
    if (blocking < 0)
        return NULL;
    int on = blocking && core_dict != NULL && recording_on();
    if (on && timeout != Py_None) {
        double t = PyFloat_AsDouble(timeout);
        if (t == -1.0 && PyErr_Occurred()) {
            PyErr_Clear();
            on = 0;  /* (the original raises its own error) */
        }
        else if (t < 0)
            on = 0;
    }
    if (!on) {
        if (PyErr_Occurred() && swallow() < 0)
            return NULL;
        return call_with_self(sq_orig_get, self, args, nargs, kwnames);
    }
    PyObject *now[2] = {self, Py_False};
    PyObject *item = PyObject_Vectorcall(sq_orig_get, now, 2, NULL);
    if (item != NULL || !PyErr_ExceptionMatches(sq_empty))
        return item;
    PyErr_Clear();
    /* It blocks: wait-begin and wait-end at the caller's site. */
    PyObject *site = site_id_c(NULL, &int_one, 1);
    if (site == NULL)
        return NULL;
    PyObject *extra = NULL, *r = NULL;
    if (timeout != Py_None) {
        extra = PyDict_New();
        if (extra != NULL && PyDict_SetItem(extra, s_timeout, timeout) < 0)
            Py_CLEAR(extra);
    }
    if (timeout == Py_None || extra != NULL)
        r = emit_at(op_wait_begin, self, site, extra);
    Py_XDECREF(extra);
    if (r == NULL && swallow() < 0) {
        Py_DECREF(site);
        return NULL;
    }
    Py_XDECREF(r);
    PyObject *wait[3] = {self, Py_True, timeout};
    item = PyObject_Vectorcall(sq_orig_get, wait, 3, NULL);
    PyObject *type = NULL, *value = NULL, *tb = NULL;
    int outcome = 0;
    if (item == NULL) {
        outcome = PyErr_ExceptionMatches(sq_empty) ? 1 : 2;
        PyErr_Fetch(&type, &value, &tb);
    }
    r = emit_at(op_wait_end, self, site, sq_outcome[outcome]);
    Py_DECREF(site);
    if (r == NULL) {
        if (swallow() < 0 && item != NULL) {
            Py_CLEAR(item);  /* (a KeyboardInterrupt while recording: it goes on) */
            type = NULL;
        }
        else
            PyErr_Clear();
    }
    Py_XDECREF(r);
    if (type != NULL)
        PyErr_Restore(type, value, tb);
    return item;
}

static PyMethodDef sq_put_def = {
    "put", (PyCFunction)(void (*)(void))sq_put, METH_FASTCALL | METH_KEYWORDS,
    "put($self, /, item, block=True, timeout=None)\n--\n\n"
    "Put the item on the queue (a signal on it: lockscope)."};
static PyMethodDef sq_get_def = {
    "get", (PyCFunction)(void (*)(void))sq_get, METH_FASTCALL | METH_KEYWORDS,
    "get($self, /, block=True, timeout=None)\n--\n\n"
    "Remove and return an item from the queue (a wait on it when it blocks: lockscope)."};

/* The module's simplequeue_put and simplequeue_get (set on the traced class). */
static int
simplequeue_init(PyObject *m)
{
    static const char *const outcomes[3] = {"ok", "timeout", "error"};
    if (!(s_block = intern("block")) || !(s_timeout = intern("timeout"))
            || !(op_wait_begin = intern("wait-begin")) || !(op_wait_end = intern("wait-end"))
            || !(sq_put_extra = Py_BuildValue("{sN}", "sig", intern("put"))))
        return -1;
    for (int i = 0; i < 3; i++)
        if (!(sq_outcome[i] = Py_BuildValue("{ss}", "outcome", outcomes[i])))
            return -1;
    static const char *const names[2] = {"simplequeue_put", "simplequeue_get"};
    PyMethodDef *defs[2] = {&sq_put_def, &sq_get_def};
    return add_methods_for_any_class(m, defs, names, 2);
}
