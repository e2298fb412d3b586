/* Thread-pool jobs in C (recorder/_jobs.py; #included by _speedups.c after Job).
 *
 * ThreadPoolExecutor's _WorkItem.__init__ and run, and the ``pass`` of
 * Future.result()/exception() on a done future, without a recorder frame per
 * job: the Python wrappers ran about 145 bytecodes a job, a quarter of what a
 * tiny job costs bare.  Same events, same fields and sites as _jobs.py's
 * _traced_init, _traced_run and _passed, which stay for the pure-Python
 * recorder. */

static PyObject *job_orig_init, *job_orig_run;  /* _WorkItem's own */
static PyObject *job_names;        /* _jobs._names: plain function -> its name */
static PyObject *job_name_of;      /* _jobs._name_of: the name when not there */
static PyObject *job_submit_extra; /* _jobs._SUBMIT, shared by every submission */
static PyObject *s_ls_job, *s_fn, *s_a_state, *s_a_condition, *s_finished;
static PyObject *op_segment_begin, *op_segment_end, *op_pass, *int_minus_one;

static PyObject *intern(const char *s);


static PyObject *job_orig_result, *job_orig_exception;  /* Future's own */

/* set_job_hooks(init, run, names, name_of, submit_extra, result, exception): what
 * job_init, job_run, job_result and job_exception call and read. */
static PyObject *
set_job_hooks(PyObject *mod, PyObject *args)
{
    PyObject *init, *run, *names, *name_of, *extra, *result, *exception;
    if (!PyArg_ParseTuple(args, "OOO!OO!OO", &init, &run, &PyDict_Type, &names, &name_of,
                          &PyDict_Type, &extra, &result, &exception))
        return NULL;
    PyObject **slots[] = {&job_orig_result, &job_orig_exception, &job_orig_init, &job_orig_run,
                          &job_names, &job_name_of, &job_submit_extra};
    PyObject *values[] = {result, exception, init, run, names, name_of, extra};
    hold_all(slots, values, 7);
    Py_RETURN_NONE;
}

/* The segment of a work item that runs `fn` (new reference): _jobs.Job(fn). */
static PyObject *
job_new(PyObject *fn)
{
    PyObject *name = NULL;
    if (Py_IS_TYPE(fn, &PyFunction_Type) || Py_IS_TYPE(fn, &PyCFunction_Type)) {
        name = PyDict_GetItemWithError(job_names, fn);  /* (borrowed) */
        if (name == NULL && PyErr_Occurred())
            return NULL;
        Py_XINCREF(name);
    }
    if (name == NULL && (name = PyObject_CallOneArg(job_name_of, fn)) == NULL)
        return NULL;
    if (!PyUnicode_Check(name)) {
        PyErr_SetString(PyExc_TypeError, "a job's name is not a str");
        Py_DECREF(name);
        return NULL;
    }
    PyObject *id = PyObject_CallNoArgs(next_id_fn);
    if (id == NULL || !PyLong_Check(id)) {
        if (id != NULL)
            PyErr_SetString(PyExc_TypeError, "next_id() gave no int");
        Py_XDECREF(id);
        Py_DECREF(name);
        return NULL;
    }
    Job *j = PyObject_New(Job, &Job_Type);
    if (j == NULL) {
        Py_DECREF(id);
        Py_DECREF(name);
        return NULL;
    }
    j->id = id;
    j->name = name;
    return (PyObject *)j;
}

/* Record `op` on `job` with `extra` (NULL: none), its site the caller's when
 * `site` (else none): 0, or -1 when what stopped it is not an Exception. */
static int
job_emit(PyObject *op, PyObject *job, int site, PyObject *extra)
{
    PyObject *eargs[4] = {op, job, site ? int_one : int_minus_one, extra};
    PyObject *r = emit_here(NULL, eargs, extra != NULL ? 4 : 3);
    if (r == NULL)
        return swallow();
    Py_DECREF(r);
    return 0;
}

/* _WorkItem.__init__(self, future, fn, args, kwargs): the original, then the
 * job's segment and its submission (a ``signal`` at the submitting line). */
static PyObject *
job_init(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (job_orig_init == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "traced _WorkItem without its original __init__");
        return NULL;
    }
    PyObject *r = call_with_self(job_orig_init, self, args, nargs, kwnames);
    if (r == NULL || nargs < 2 || core_dict == NULL || !recording_on()) {
        if (r != NULL && PyErr_Occurred() && swallow() < 0)
            Py_CLEAR(r);
        return r;
    }
    PyObject *job = job_new(args[1]);
    if (job == NULL || PyObject_SetAttr(self, s_ls_job, job) < 0
            || job_emit(s_signal, job, 1, job_submit_extra) < 0) {
        if (PyErr_Occurred() && swallow() < 0)
            Py_CLEAR(r);
    }
    Py_XDECREF(job);
    return r;
}

/* _WorkItem.run(self): the original between the job's segment-begin and
 * segment-end (the end also when it raises). */
static PyObject *
job_run(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (job_orig_run == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "traced _WorkItem without its original run");
        return NULL;
    }
    if (nargs || kwnames != NULL || core_dict == NULL || !recording_on()) {
        if (PyErr_Occurred() && swallow() < 0)
            return NULL;
        /* (called not as run() is: the original says how) */
        return call_with_self(job_orig_run, self, args, nargs, kwnames);
    }
    PyObject *job = NULL;
    if (lookup_attr(self, s_ls_job, &job) < 0 && swallow() < 0)
        return NULL;
    if (job == NULL || job == Py_None) {
        /* submitted before the patch (the pool's first job) or while off */
        Py_CLEAR(job);
        PyObject *fn = NULL;
        if (lookup_attr(self, s_fn, &fn) > 0) {
            job = job_new(fn);
            if (job != NULL && PyObject_SetAttr(self, s_ls_job, job) < 0)
                Py_CLEAR(job);
        }
        Py_XDECREF(fn);
        if (job == NULL) {
            if (PyErr_Occurred() && swallow() < 0)
                return NULL;
            return PyObject_CallOneArg(job_orig_run, self);
        }
    }
    if (job_emit(op_segment_begin, job, 0, NULL) < 0) {
        Py_DECREF(job);
        return NULL;
    }
    PyObject *r = PyObject_CallOneArg(job_orig_run, self);
    PyObject *type = NULL, *value = NULL, *tb = NULL;
    if (r == NULL)
        PyErr_Fetch(&type, &value, &tb);
    if (job_emit(op_segment_end, job, 0, NULL) < 0) {
        if (r == NULL)
            PyErr_Clear();  /* the run's own error wins */
        else
            Py_CLEAR(r);
    }
    if (type != NULL)
        PyErr_Restore(type, value, tb);
    Py_DECREF(job);
    return r;
}

/* job_passed(future): result()/exception() of a future already done is a
 * ``pass`` on its condition (the notify_all of set_result is the signal it
 * follows).  Never raises an Exception. */
static PyObject *
job_passed(PyObject *mod, PyObject *future)
{
    if (core_dict == NULL || !recording_on()) {
        if (PyErr_Occurred() && swallow() < 0)
            return NULL;
        Py_RETURN_NONE;
    }
    PyObject *state = NULL, *cond = NULL, *cid = NULL;
    int rc = 0;
    if (lookup_attr(future, s_a_state, &state) > 0 && PyUnicode_Check(state)
            && PyUnicode_Compare(state, s_finished) == 0
            && lookup_attr(future, s_a_condition, &cond) > 0
            && lookup_attr(cond, s_ls_id, &cid) > 0)
        rc = job_emit(op_pass, cond, 1, NULL);
    Py_XDECREF(state);
    Py_XDECREF(cond);
    Py_XDECREF(cid);
    if (rc < 0 || (PyErr_Occurred() && swallow() < 0))
        return NULL;
    Py_RETURN_NONE;
}

/* Future.result/exception(self, timeout=None): job_passed, then the original
 * (no recorder frame: a pool's map calls result() once a job). */
static PyObject *
job_outcome(PyObject *orig, PyObject *self, PyObject *const *args, Py_ssize_t nargs,
            PyObject *kwnames)
{
    if (orig == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "traced Future without its original methods");
        return NULL;
    }
    PyObject *r = job_passed(NULL, self);
    if (r == NULL)
        return NULL;
    Py_DECREF(r);
    return call_with_self(orig, self, args, nargs, kwnames);
}

static PyObject *
job_result(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return job_outcome(job_orig_result, self, args, nargs, kwnames);
}

static PyObject *
job_exception(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return job_outcome(job_orig_exception, self, args, nargs, kwnames);
}

static PyMethodDef job_result_def = {
    "result", (PyCFunction)(void (*)(void))job_result, METH_FASTCALL | METH_KEYWORDS,
    "result($self, /, timeout=None)\n--\n\n"
    "The future's own result(), after a pass on its condition if it is done (lockscope)."};
static PyMethodDef job_exception_def = {
    "exception", (PyCFunction)(void (*)(void))job_exception, METH_FASTCALL | METH_KEYWORDS,
    "exception($self, /, timeout=None)\n--\n\n"
    "The future's own exception(), after a pass on its condition if it is done (lockscope)."};

static PyMethodDef job_init_def = {
    "__init__", (PyCFunction)(void (*)(void))job_init, METH_FASTCALL | METH_KEYWORDS,
    "The work item's own __init__, then its job's segment and submission (lockscope)."};
static PyMethodDef job_run_def = {
    "run", (PyCFunction)(void (*)(void))job_run, METH_FASTCALL | METH_KEYWORDS,
    "The work item's own run between its job's segment-begin and -end (lockscope)."};

/* The module's job_init and job_run: methods for any class (set on _WorkItem). */
static int
jobs_init(PyObject *m)
{
    if (!(s_ls_job = intern("_ls_job")) || !(s_fn = intern("fn"))
            || !(s_a_state = intern("_state")) || !(s_a_condition = intern("_condition"))
            || !(s_finished = intern("FINISHED")) || !(op_pass = intern("pass"))
            || !(op_segment_begin = intern("segment-begin"))
            || !(op_segment_end = intern("segment-end"))
            || !(int_minus_one = PyLong_FromLong(-1)))
        return -1;
    static const char *const names[4] = {"job_init", "job_run", "job_result", "job_exception"};
    PyMethodDef *defs[4] = {&job_init_def, &job_run_def, &job_result_def, &job_exception_def};
    return add_methods_for_any_class(m, defs, names, 4);
}
