/* threading.Event.wait in C (recorder/_threading.py _event_wait; #included by
 * _speedups.c after _semaphore_fast.c).
 *
 * Every Thread.start waits on the new thread's _started event: the Python
 * wrapper ran 54 bytecodes a thread.  Same body as CPython's (with the event's
 * condition held: the flag, else the condition's wait), and the same ``pass``
 * event at the caller's site when the event is already set. */

static PyObject *event_py_wait;  /* recorder._threading._event_wait (odd arguments) */
static PyObject *s_cond, *s_flag, *s_enter, *s_exit, *s_wait;  /* (op_pass: _jobs_fast.c) */
static PyObject *s_lock_attr;
static void chain_raised(PyObject *et, PyObject *ev, PyObject *tb);
/* The stock Condition's own __enter__ and __exit__ (strong; read from its class
 * when first needed): a condition whose type still has them takes its lock. */
static PyObject *stock_cond_enter, *stock_cond_exit;

/* set_event_hooks(py_wait). */
static PyObject *
set_event_hooks(PyObject *mod, PyObject *py_wait)
{
    Py_XSETREF(event_py_wait, Py_NewRef(py_wait));
    Py_RETURN_NONE;
}

/* The body inside ``with self._cond:`` (new reference, or NULL). */
static PyObject *
event_wait_held(PyObject *cond, PyObject *self, PyObject *timeout)
{
    PyObject *flag = PyObject_GetAttr(self, s_flag);
    if (flag == NULL)
        return NULL;
    int set = PyObject_IsTrue(flag);
    if (set < 0) {
        Py_DECREF(flag);
        return NULL;
    }
    if (!set) {
        Py_DECREF(flag);
        return PyObject_CallMethodOneArg(cond, s_wait, timeout);
    }
    if (recording_on()) {  /* (a pass on its condition, under the event's lock) */
        PyObject *id;
        if (lookup_attr(cond, s_ls_id, &id) < 0) {
            if (swallow() < 0) {
                Py_DECREF(flag);
                return NULL;
            }
        }
        else if (id != NULL) {
            Py_DECREF(id);
            PyObject *eargs[3] = {op_pass, cond, int_one};
            PyObject *r = emit_here(NULL, eargs, 3);
            if (r == NULL && swallow() < 0) {
                Py_DECREF(flag);
                return NULL;
            }
            Py_XDECREF(r);
        }
    }
    return flag;
}

/* The lock of `cond` (new reference) when it is a stock, untraced Condition (a
 * Thread's own _started Event: see in_thread_internals) whose __enter__ and
 * __exit__ are still Condition's, i.e. its lock's, and that lock a _thread.lock
 * (whose __enter__ and __exit__ are its acquire and release); else NULL, no
 * error set. */
static PyObject *
stock_condition_lock(PyObject *cond)
{
    PyTypeObject *tp = Py_TYPE(cond);
    if (ctor_orig_condition == NULL || (PyObject *)tp != ctor_orig_condition)
        return NULL;
    if (stock_cond_enter == NULL) {
        PyObject *enter = PyDict_GetItemWithError(tp->tp_dict, s_enter);  /* borrowed */
        PyObject *exit = enter != NULL ? PyDict_GetItemWithError(tp->tp_dict, s_exit) : NULL;
        if (exit == NULL || !PyFunction_Check(enter) || !PyFunction_Check(exit)) {
            PyErr_Clear();
            return NULL;
        }
        stock_cond_enter = Py_NewRef(enter);
        stock_cond_exit = Py_NewRef(exit);
    }
    if (_PyType_Lookup(tp, s_enter) != stock_cond_enter
            || _PyType_Lookup(tp, s_exit) != stock_cond_exit)
        return NULL;
    PyObject *lock;
    if (raw_lock_type == NULL || lookup_attr(cond, s_lock_attr, &lock) < 0) {
        PyErr_Clear();
        return NULL;
    }
    if (lock != NULL && Py_TYPE(lock) != raw_lock_type)
        Py_CLEAR(lock);
    return lock;
}

/* Event.wait on a stock Condition (its lock `lock`): what `with self._cond:`
 * runs, the lock taken and released as its own methods do (raw_try /
 * raw_release, else those methods), without the condition's two Python methods
 * called from C (every Thread.start waits on its Thread's _started Event).
 * Nothing is recorded: the condition is not traced (event_wait_held's pass is
 * only for one that is). */
static PyObject *
event_wait_stock(PyObject *self, PyObject *cond, PyObject *lock, PyObject *timeout)
{
    if (raw_try(lock) != 1) {  /* (busy: its blocking acquire) */
        PyObject *got = PyObject_CallMethodNoArgs(lock, s_acquire);
        if (got == NULL)
            return NULL;
        Py_DECREF(got);
    }
    PyObject *r = event_wait_held(cond, self, timeout);
    PyObject *type = NULL, *value = NULL, *tb = NULL;
    if (r == NULL)
        PyErr_Fetch(&type, &value, &tb);
    if (raw_release(lock) != 1) {
        PyObject *done = PyObject_CallMethodNoArgs(lock, s_release);
        if (done == NULL) {  /* (its error, chained to the wait's as __exit__'s is) */
            Py_CLEAR(r);
            chain_raised(type, value, tb);
            return NULL;
        }
        Py_DECREF(done);
    }
    if (type != NULL)
        PyErr_Restore(type, value, tb);
    return r;
}

static PyObject *
event_wait(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    Py_ssize_t nkw = kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0;
    PyObject *timeout = Py_None;
    if (nargs == 1 && nkw == 0)
        timeout = args[0];
    else if (nargs == 0 && nkw == 1 && PyUnicode_Check(PyTuple_GET_ITEM(kwnames, 0))
             && PyUnicode_Compare(PyTuple_GET_ITEM(kwnames, 0), s_timeout) == 0)
        timeout = args[0];
    else if (nargs != 0 || nkw != 0) {  /* the Python version says what is wrong */
        if (event_py_wait == NULL) {
            PyErr_SetString(PyExc_RuntimeError, "traced Event without its wait");
            return NULL;
        }
        return call_with_self(event_py_wait, self, args, nargs, kwnames);
    }
    PyObject *cond = PyObject_GetAttr(self, s_cond);
    if (cond == NULL)
        return NULL;
    PyObject *lock = stock_condition_lock(cond);
    if (lock != NULL) {
        PyObject *r = event_wait_stock(self, cond, lock, timeout);
        Py_DECREF(lock);
        Py_DECREF(cond);
        return r;
    }
    PyObject *entered = PyObject_CallMethodNoArgs(cond, s_enter);
    if (entered == NULL) {
        Py_DECREF(cond);
        return NULL;
    }
    Py_DECREF(entered);
    PyObject *r = event_wait_held(cond, self, timeout), *exited;
    if (r != NULL) {
        PyObject *none3[4] = {cond, Py_None, Py_None, Py_None};
        exited = PyObject_VectorcallMethod(s_exit, none3, 4 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
        if (exited == NULL)
            Py_CLEAR(r);
    }
    else {  /* __exit__ with the exception: it may suppress it (the wait returns None) */
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        PyErr_NormalizeException(&type, &value, &tb);
        if (tb != NULL && value != NULL)
            PyException_SetTraceback(value, tb);
        PyObject *exc3[4] = {cond, type, value != NULL ? value : Py_None,
                             tb != NULL ? tb : Py_None};
        exited = PyObject_VectorcallMethod(s_exit, exc3, 4 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
        int suppress = exited != NULL ? PyObject_IsTrue(exited) : -1;
        if (suppress > 0) {
            Py_XDECREF(type);
            Py_XDECREF(value);
            Py_XDECREF(tb);
            r = Py_NewRef(Py_None);
        }
        else if (suppress == 0)
            PyErr_Restore(type, value, tb);
        else {  /* (__exit__ raised: its exception, chained to the wait's) */
            Py_XDECREF(type);
            Py_XDECREF(tb);
            PyObject *t2, *v2, *tb2;
            PyErr_Fetch(&t2, &v2, &tb2);
            PyErr_NormalizeException(&t2, &v2, &tb2);
            if (v2 != NULL && value != NULL)
                PyException_SetContext(v2, value);
            else
                Py_XDECREF(value);
            PyErr_Restore(t2, v2, tb2);
        }
    }
    Py_XDECREF(exited);
    Py_DECREF(cond);
    return r;
}

static PyMethodDef event_wait_def = {
    "wait", (PyCFunction)(void (*)(void))event_wait, METH_FASTCALL | METH_KEYWORDS,
    "wait($self, /, timeout=None)\n--\n\n"
    "Block until the internal flag is true (recorded: lockscope)."};

/* The module's event_wait. */
static int
event_init(PyObject *m)
{
    if (!(s_cond = intern("_cond")) || !(s_flag = intern("_flag"))
        || !(s_enter = intern("__enter__")) || !(s_exit = intern("__exit__"))
        || !(s_wait = intern("wait")) || !(s_lock_attr = intern("_lock")))
        return -1;
    static const char *const names[1] = {"event_wait"};
    PyMethodDef *defs[1] = {&event_wait_def};
    return add_methods_for_any_class(m, defs, names, 1);
}
