/* lockscope recorder, summary mode: the hot path's filter ("validate once").
 *
 * #included by _speedups.c (after buffer_put, counted and lose, before record()).
 * In summary mode the writer's Summary (recorder/_summary.py) decides what is
 * written; this filter only takes away, before an event is buffered, the events it
 * can prove the Summary would not write:
 *
 *   - the acquire of a Lock/RLock whose dependency (the locks its actor holds, with
 *     their sites, -> this lock, this site) was already let through for this actor,
 *     or for SF_ACTORS_PER_DEP actors, is counted here (dependency counts), and its
 *     release too (hold time into the lock's log2 histogram) unless the hold lasted
 *     the threshold or longer: then the acquire and the release go to the Summary,
 *     which writes a long hold;
 *   - a signal whose kind (resource class, sig, site, classes of the locks held)
 *     was let through for this actor or for SF_ACTORS_PER_DEP actors, unless a
 *     wait on its resource that the Summary may have written is open (one begun
 *     holding a lock, or older than the threshold); kinds compared by a 64-bit hash;
 *   - the acquire (and release) of a lock made per request or per item: once
 *     INSTANCES_PER_CLASS dependencies of the same lock classes (creation
 *     site and type of each lock, and the sites) were let through, a new
 *     dependency of those classes is counted here as the dependency of classes,
 *     as the Summary would count it (by_site), instead of going through;
 *   - the lifecycle of a thread or pool job the Summary has not shown: a thread's
 *     `start` and `join`s, and its `end` if none of its own events went through; a
 *     job's submission, and its `segment-begin` and `segment-end` if nothing of its
 *     worker went through meanwhile, are held back here (see "lifecycles") until
 *     the Summary shows it (summary_shown());
 *   - `suspend` and `resume`, which the Summary drops, and `pass` but for a
 *     resource's first few while all its signals went through (see SfOrd).
 *
 * Everything else goes through.  Before an event that the Summary judges with the
 * actor's held set (a new dependency, a wait, a signal, a try-fail, ...), the
 * acquires of the locks the actor holds that were counted here are buffered first,
 * with their own time stamps and SF_COUNTED as extra (the Summary does not count
 * their dependency again): the Summary always sees the held set it would have seen.
 * The writer takes the counts (summary_take()) when it writes `dep` and `hist`
 * records.
 *
 * Per actor (a thread state, or an asyncio task) the held stack is kept here; a
 * dependency is keyed by a hash of that stack, checked against the stack itself.
 * Objects named in the tables are held (strong references), so an address in a
 * key stays that object's.  Tables are fixed-size: when one is full, events go
 * through (the Summary then counts them).  Everything runs with the GIL held and
 * calls no Python code while a table is half-updated (references are dropped last).
 */

#include <stdint.h>
#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#endif

static PyTypeObject LockCore_Type, Job_Type;  /* (defined below, in _speedups.c) */
static inline PyObject *slot(PyObject *st, Py_ssize_t off);

#define SF_ACTORS_PER_DEP 4       /* recorder/_summary.py ACTORS_PER_DEP */

#define SF_MAX_HELD 64            /* recorder/_summary.py MAX_HELD */
#define SF_DEP_SLOTS 8192         /* power of two */
#define SF_DEP_FILL (SF_DEP_SLOTS / 4 * 3)
#define SF_LOCK_SLOTS 8192
#define SF_LOCK_FILL (SF_LOCK_SLOTS / 4 * 3)
/* From here the filter wakes the writer to take the lock table, and frees an
 * idle lock's slot at its release (see sf_due, sf_lock_forget). */
#define SF_LOCK_MARK (SF_LOCK_SLOTS / 4)
#define SF_ACTOR_SLOTS 4096
#define SF_ACTOR_FILL (SF_ACTOR_SLOTS / 4 * 3)
#define SF_BUCKETS 64

typedef struct {
    PyObject *obj;      /* strong */
    long long site;
    long long ts;       /* when it was acquired */
    uint64_t sig;       /* hash of the stack up to and including this entry */
    int counted;        /* its acquire was counted here, not buffered */
} SfHeld;

typedef struct SfActor_ {
    PyObject *key;      /* the thread state, or the task (strong; first: see sf_slot_find) */
    PyObject *task;     /* the task, or Py_None (borrowed from key / None) */
    uint64_t serial;
    int n, cap;
    SfHeld *held;
    PyObject *waiting;  /* a lock whose `wait` went through (compared only) */
    PyObject *held_wait;    /* a resource its open wait on which began holding a lock */
    PyObject *wait_res;     /* the resource of its open wait, listed there (compared only) */
    long long wait_since;   /* when that wait began */
    struct SfActor_ *wait_next; /* the next actor on wait_res's list of waiters */
    int ncounted;       /* entries with counted set */
    int tainted;        /* events were lost: let everything through until n == 0 */
    int ended;          /* ended holding counted locks: kept until others release them */
    /* its wait for a traced lock, held back here until the acquire that ends it:
     * counted if that came within the threshold (see sf_lw_put) */
    PyObject *lw_obj, *lw_site, *lw_by;    /* (strong; lw_by: its thread's state) */
    long long lw_ts;
    PyObject *seg;      /* the job whose segment-begin it holds back here (compared only) */
    uint64_t seg_serial;    /* (that job's SfLife) */
    int seg_index;      /* (the segment-begin's place in it) */
} SfActor;

typedef struct {
    PyObject *obj;      /* strong */
    long long site;
} SfPair;

typedef struct {
    uint64_t h;         /* 0: free */
    PyObject *obj;      /* strong */
    long long site;
    int depth;
    SfPair *held;       /* depth entries, objects strong */
    long long n, first, last;   /* occurrences counted here, not yet taken */
    uint64_t actors[SF_ACTORS_PER_DEP];
    int nactors;
    /* A dependency of lock classes (see sf_class_dep): keyed by the hash of the
     * classes alone; obj and held are its first instances, to name it by. */
    int by_class;
    int made;           /* its instance dependencies let through so far */
} SfDep;

/* A permit of a semaphore of several permits, taken without waiting: counted
 * here, its acquire made into an event only if the Summary needs it. */
typedef struct {
    PyObject *by;       /* the taker's thread state (strong) */
    PyObject *task;     /* its task, or None (strong) */
    uint64_t actor;     /* its actor's serial */
    long long site, ts;
} SfPermit;

/* Hold times (log2 buckets of ns) and refusals counted here, not yet taken. */
typedef struct {
    long long n, sum, max;
    uint32_t b[SF_BUCKETS];
} SfDist;

typedef struct {
    SfDist hold, wait;
    long long fails;
} SfHist;

typedef struct {
    PyObject *obj;      /* strong; NULL: free */
    int holds;          /* entries of it in the actors' stacks */
    int counted_holds;  /* of which counted here */
    PyObject *holder;   /* the key of the actor that took it last (compared only) */
    uint64_t holder_serial;
    int mutex;          /* -1: not known yet */
    int deps;           /* its acquires are counted as dependencies here (sf_counts);
                         * -1: not known yet */
    int open_waits;     /* (a resource) waits begun on it and not ended */
    int held_waits;     /* of which begun holding a lock (the Summary writes those) */
    SfActor *waiters;   /* (a resource) actors whose open wait on it is listed */
    int loose_waits;    /* open waits not listed (an actor's second one): */
    long long open_since;   /* start of the first since loose_waits was 0 */
    uint64_t cls;       /* hash of its class (see sf_class_of); 0: not known yet */
    int own;            /* its own histograms (1), its class's (0), not known yet (-1) */
    int ord;            /* (a resource) its SfOrd in its class: k + 1; -1: none; 0: not known yet */
    /* (a resource) actors whose signal went through for a written wait open on it
     * (see sf_woke), valid while sf_epoch is woke_epoch */
    uint64_t woke[SF_ACTORS_PER_DEP];
    int nwoke;
    uint64_t woke_epoch;
    SfHist h;           /* (own == 1) */
    /* (a semaphore of several permits) its permits taken without waiting, counted
     * here oldest first while the Summary holds none of it (py_permits == 0):
     * what the Summary would do with them (Summary._acquire/_release of a
     * semaphore) is done here, unless a wait on it or a long hold needs them
     * written: then they go to it (sf_spill) */
    SfPermit *permits;
    int npermits;
    int py_permits;     /* acquires of it that went to the Summary, less releases */
} SfLock;

/* A class of locks (creation site and type) whose holds were counted here: the
 * first INSTANCES_PER_CLASS locks of it (by _ls_id) have histograms of their
 * own, the others count into the class's (Summary._hist, by_site). */
#define SF_CLASS_SLOTS 1024
#define SF_CLASS_FILL (SF_CLASS_SLOTS / 4 * 3)
/* What orders the actors around one resource (an event, a condition, a queue
 * side, a future...): the first INSTANCES_PER_CLASS resources of each class
 * (creation site) have their first SF_ORD_PER_RESOURCE signals, waits (and the
 * signals that end them) and `pass`es written, which is what the analyzer's
 * happens-before needs to order a ready/handshake pattern (Summary._first). */
#define SF_ORD_PER_RESOURCE 4     /* recorder/_summary.py ORDER_PER_RESOURCE */
typedef struct {
    PyObject *signallers[SF_ORD_PER_RESOURCE];  /* actor keys of its first signals (compared only) */
    PyObject *waiters[SF_ORD_PER_RESOURCE];     /* actor keys of its first waits (compared only) */
    int nsig;               /* signals on it so far (counted up to SF_ORD_PER_RESOURCE + 1) */
    int nwait, npass;       /* its waits and passes let through as ordering */
    int lost;               /* one of its first signals was lost (a full buffer) */
} SfOrd;

typedef struct {
    uint64_t cls;       /* 0: free */
    PyObject *obj;      /* the lock it is named by (strong) */
    int nmembers, cap;
    long long *members; /* _ls_id of the locks with their own (cap of them) */
    long long top;      /* the largest of them (ids only grow: a newer object of a
                         * full class is known not to be one without a scan) */
    SfOrd *ord;         /* (a class of resources) the members' ordering state */
    SfHist h;
} SfClass;
static SfClass sf_classes[SF_CLASS_SLOTS];
static int sf_nclasses = 0;
/* Acquires of permits counted here that the Summary must see before what comes
 * next, as [(thread state, event)]: taken (summary_spilled) before each batch. */
static PyObject *sf_spill = NULL;

static int sf_on = 0;
static int sf_nlw = 0;            /* actors with a lock wait held back (lw_obj) */
/* Bumped each time the writer takes a thread's buffer (take_n): events of one
 * thread recorded in the same epoch reach the Summary in the same process(). */
static uint64_t sf_epoch = 1;
/* recorder/_summary.py INSTANCES_PER_CLASS (given by summary_start) */
static int sf_instances_per_class = 64;
static long long sf_threshold = 10000000;
static uint64_t sf_next_serial = 1;
static PyObject *sf_counted;      /* SUMMARY_COUNTED: the extra of a re-sent acquire */
static PyObject *sf_op_pass, *sf_op_suspend, *sf_op_resume, *sf_op_end, *sf_op_wait;
static PyObject *sf_op_start, *sf_op_join, *sf_op_name, *sf_op_seg_begin, *sf_op_seg_end;
static PyObject *sf_op_resync, *sf_op_dropped, *sf_op_timeout, *sf_op_cancel, *sf_op_try_fail;
static PyObject *sf_s_semaphore, *sf_s_aio_lock;

static SfDep sf_deps[SF_DEP_SLOTS];
static int sf_ndeps = 0;
/* A kind of signal (resource class, sig, site, classes of the locks held), with
 * the actors it was let through for: kinds are told apart by a 64-bit hash. */
typedef struct {
    uint64_t h;         /* 0: free */
    uint64_t actors[SF_ACTORS_PER_DEP];
    int nactors;
} SfKind;

#define SF_KIND_SLOTS 8192
#define SF_KIND_FILL (SF_KIND_SLOTS / 4 * 3)
static SfKind sf_kinds[SF_KIND_SLOTS];
static int sf_nkinds = 0;
static PyObject *sf_op_signal, *sf_op_wait_begin, *sf_op_wait_end, *sf_s_sig, *sf_s_submit;
static PyObject *sf_s_ls_def, *sf_s_ls_id, *sf_s_site, *sf_s_type, *sf_s_value;

static SfLock sf_locks[SF_LOCK_SLOTS];
/* Which slots of a big table are in use: its scans (each take, the clear at the
 * end) visit only those.  Scanning all 8192 locks of 1.6 KB and 1024 classes of
 * 5.6 KB faulted in 13 MB of zero pages at a program's end. */
typedef struct { uint64_t w[SF_LOCK_SLOTS / 64]; } SfUsed;
static SfUsed sf_lock_used, sf_class_used;

static inline void
sf_used_mark(SfUsed *u, unsigned i)
{
    u->w[i >> 6] |= 1ULL << (i & 63);
}

/* The first slot in use at or after i (of n), or n. */
static inline int
sf_used_next(const SfUsed *u, int i, int n)
{
    while (i < n) {
        uint64_t w = u->w[i >> 6] & (~0ULL << (i & 63));
        if (w != 0)
            return (i & ~63) + __builtin_ctzll(w);
        i = (i & ~63) + 64;
    }
    return n;
}
#define SF_EACH_USED(i, u, n) for (int i = sf_used_next(u, 0, n); i < (n); i = sf_used_next(u, i + 1, n))
static int sf_nlocks = 0;
static SfActor *sf_actors[SF_ACTOR_SLOTS];
static int sf_nactors = 0;
/* Counted acquires re-sent (their dependency occurrence stays counted here). */
static long long sf_resent = 0;
/* Events the filter buffered, not yet passed to counted(). */
static Py_ssize_t sf_puts = 0;
/* Threads inside the filter (one may let others run: a collection's finalizers);
 * the tables are not freed meanwhile, but once none is (sf_clear_pending). */
static int sf_busy = 0;
static int sf_clear_pending = 0;
/* The writer was woken to take the tables (see sf_due); re-armed by the take. */
static int sf_wake_sent = 0;

/* Locks the last take kept (held, or waited on): a take frees no more. */
static int sf_kept = 0;

/* Whether a take would make room: the lock table a quarter full of locks it
 * would let go (the writer needs the GIL to take them: locks made per item keep
 * coming meanwhile), or the dependency or kind table as full as a take empties it. */
static inline int
sf_due(void)
{
    return (sf_nlocks >= SF_LOCK_MARK && sf_nlocks >= 2 * sf_kept)
        || sf_ndeps >= SF_DEP_FILL - SF_DEP_SLOTS / 8
        || sf_nkinds >= SF_KIND_FILL - SF_KIND_SLOTS / 8;
}

static inline uint64_t
sf_mix(uint64_t h, PyObject *obj, long long site)
{
    uint64_t x = (h * 0x9E3779B97F4A7C15ULL) ^ (uint64_t)(uintptr_t)obj;
    x ^= (uint64_t)site * 0xC2B2AE3D27D4EB4FULL;
    x ^= x >> 31;
    x *= 0xBF58476D1CE4E5B9ULL;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBULL;
    x ^= x >> 31;
    return x | 1;
}

static inline uint64_t
sf_ptr_hash(void *p)
{
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 33;
    x *= 0xFF51AFD7ED558CCDULL;
    x ^= x >> 33;
    return x;
}

static inline int
sf_op_is(PyObject *op, PyObject *name)
{
    if (op == name)
        return 1;  /* (names are interned: an interned op of another address differs) */
    return PyUnicode_Check(op) && !PyUnicode_CHECK_INTERNED(op) && PyUnicode_Compare(op, name) == 0;
}

/* ------------------------------------------------------------------ actors */

/* Open-addressed tables of pointers to entries whose first member is their key
 * (SfActor, SfLife), keyed by the key's address: the slot of `key`, or -1. */
static int
sf_slot_find(void **table, unsigned slots, PyObject *key)
{
    unsigned i = (unsigned)sf_ptr_hash(key) & (slots - 1);
    for (;;) {
        PyObject **e = (PyObject **)table[i];
        if (e == NULL)
            return -1;
        if (*e == key)
            return (int)i;
        i = (i + 1) & (slots - 1);
    }
}

/* In a linearly probed table, whether the entry at j, whose home slot is `home`,
 * stays where it is when slot `hole` is emptied: its home is cyclically in
 * (hole, j].  Else it moves back to the hole (backward-shift deletion). */
static inline int
sf_stays(unsigned hole, unsigned j, unsigned home)
{
    return hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
}

/* Empty slot i (backward-shift deletion); the caller frees its entry. */
static void
sf_slot_unlink(void **table, unsigned slots, int i)
{
    unsigned hole = (unsigned)i;
    unsigned j = hole;
    table[hole] = NULL;
    for (;;) {
        j = (j + 1) & (slots - 1);
        PyObject **e = (PyObject **)table[j];
        if (e == NULL)
            return;
        if (!sf_stays(hole, j, (unsigned)sf_ptr_hash(*e) & (slots - 1))) {
            table[hole] = table[j];
            table[j] = NULL;
            hole = j;
        }
    }
}

static int
sf_actor_find(PyObject *key)
{
    return sf_slot_find((void **)sf_actors, SF_ACTOR_SLOTS, key);
}

/* Actors freed, kept zeroed (but for their held array) for the next ones: a thread
 * per request made and freed one, and its held array, each (about 250
 * instructions). */
static Pool sf_spare_actors = POOL(32, 32);

/* The actor sf_actor found or made last (NULL once it leaves the table): an
 * event's actor is most often the last one's. */
static SfActor *sf_actor_last;

/* The actor of `key` (a thread state or a task), made if new; NULL when the table
 * is full (or out of memory: no error is left set). */
static SfActor *
sf_actor(PyObject *key, PyObject *task)
{
    SfActor *last = sf_actor_last;
    if (last != NULL && last->key == key)
        return last;
    unsigned i = (unsigned)sf_ptr_hash(key) & (SF_ACTOR_SLOTS - 1);
    for (;;) {
        SfActor *a = sf_actors[i];
        if (a == NULL)
            break;
        if (a->key == key)
            return sf_actor_last = a;
        i = (i + 1) & (SF_ACTOR_SLOTS - 1);
    }
    if (sf_nactors >= SF_ACTOR_FILL)
        return NULL;
    SfActor *a = pool_take(&sf_spare_actors);
    if (a == NULL)
        a = PyMem_Calloc(1, sizeof(SfActor));
    if (a == NULL)
        return NULL;
    a->key = Py_NewRef(key);
    a->task = task;
    a->serial = sf_next_serial++;
    sf_actors[i] = a;
    sf_nactors++;
    return sf_actor_last = a;
}

/* Take the actor out of the table; the caller frees it. */
static void
sf_actor_unlink(int i)
{
    sf_actor_last = NULL;
    sf_slot_unlink((void **)sf_actors, SF_ACTOR_SLOTS, i);
    sf_nactors--;
}

/* Free an actor taken out of the table (may run Python code: call last). */
static SfLock *sf_lock(PyObject *obj, int make);

/* Take `a` off the list of waiters of its wait's resource. */
static void
sf_unlist_waiter(SfActor *a)
{
    SfLock *r = a->wait_res != NULL ? sf_lock(a->wait_res, 0) : NULL;
    if (r != NULL) {
        for (SfActor **p = &r->waiters; *p != NULL; p = &(*p)->wait_next) {
            if (*p == a) {
                *p = a->wait_next;
                break;
            }
        }
    }
    a->wait_res = NULL;
    a->wait_next = NULL;
}

/* Whether a wait on `r` open at `now` began the threshold or longer ago. */
static int
sf_old_wait(SfLock *r, long long now)
{
    if (r->loose_waits > 0 && now - r->open_since >= sf_threshold)
        return 1;
    for (SfActor *w = r->waiters; w != NULL; w = w->wait_next)
        if (now - w->wait_since >= sf_threshold)
            return 1;
    return 0;
}

static void
sf_actor_free(SfActor *a)
{
    if (sf_actor_last == a)
        sf_actor_last = NULL;
    if (a->lw_obj != NULL) {
        sf_nlw--;
        Py_CLEAR(a->lw_obj);
        Py_CLEAR(a->lw_site);
        Py_CLEAR(a->lw_by);
    }
    if (a->wait_res != NULL)
        sf_unlist_waiter(a);
    if (a->held_wait != NULL) {
        SfLock *r = sf_lock(a->held_wait, 0);
        if (r != NULL && r->held_waits > 0)
            r->held_waits--;
    }
    for (int k = 0; k < a->n; k++) {
        SfLock *l = sf_lock(a->held[k].obj, 0);
        if (l != NULL) {
            if (l->holds > 0)
                l->holds--;
            if (a->held[k].counted && l->counted_holds > 0)
                l->counted_holds--;
        }
    }
    /* (the references go last, as they may run Python code, which may make an
     * actor out of the spare this one becomes) */
    PyObject *key = a->key, *drop[SF_MAX_HELD + 1];
    int n = a->n <= SF_MAX_HELD + 1 ? a->n : SF_MAX_HELD + 1;  /* (sf_push keeps it so) */
    for (int k = 0; k < n; k++)
        drop[k] = a->held[k].obj;
    SfHeld *held = a->held;
    int cap = a->cap;
    memset(a, 0, sizeof(*a));
    a->held = held;
    a->cap = cap;
    if (!pool_keep(&sf_spare_actors, a)) {
        PyMem_Free(held);
        PyMem_Free(a);
    }
    for (int k = 0; k < n; k++)
        Py_DECREF(drop[k]);
    Py_DECREF(key);
}

/* -------------------------------------------------------------- lifecycles */

/* A thread's or a pool job's lifecycle, held back here as the Summary would hold
 * it (see Summary._hold_back), until the Summary shows it (summary_shown() hands
 * the events over) or forgets it.  A thread: its `start` (its parent's event)
 * and `join`s, and its `end` when no event of its own went to the Summary.  A
 * job: its submission (the submitter's signal), and its `segment-begin` (the
 * worker's) until something of the worker goes to the Summary during the job
 * (the Summary shows a job with the worker's events: the segment-begin then goes
 * first, see sf_seg_release), and its `segment-end` if nothing did.  A thread
 * per request or a job that does nothing notable costs the writer nothing. */
#define SF_LIFE_SLOTS 8192
#define SF_LIFE_FILL (SF_LIFE_SLOTS / 4 * 3)
#define SF_LIFE_GONE 4096         /* recorder/_summary.py MAX_GONE */
#define SF_LIFE_EVS 6

/* A held-back event, its parts as recorded (strong references; `extra` NULL when
 * none): its Ev is made only if it is handed over (most are dropped unshown). */
typedef struct {
    PyObject *by;               /* the state of the thread that recorded it */
    PyObject *op, *obj, *site, *task, *extra;
    long long ts;
} SfLifeEv;

typedef struct {
    PyObject *key;              /* the thread's state or the Job (strong; first: see sf_slot_find) */
    uint64_t serial;
    int nev;
    SfLifeEv ev[SF_LIFE_EVS];
    int passed;                 /* an event of its own (of its run) went to the Summary */
    int cited;                  /* an event went to the Summary naming it, or another
                                 * entry holds one it recorded */
} SfLife;

/* The Ev of a held-back event (new reference), or NULL with an error. */
static PyObject *
sf_life_ev(const SfLifeEv *e)
{
    PyObject *items[6] = {NULL, e->op, e->obj, e->site, e->task, e->extra};
    return ev_new_ns(e->extra != NULL ? 6 : 5, e->ts, items);
}

/* Let go of the parts of a held-back event (may run Python code). */
static void
sf_life_ev_clear(SfLifeEv *e)
{
    Py_CLEAR(e->by);
    Py_CLEAR(e->op);
    Py_CLEAR(e->obj);
    Py_CLEAR(e->site);
    Py_CLEAR(e->task);
    Py_CLEAR(e->extra);
}

static SfLife *sf_lives[SF_LIFE_SLOTS];
/* Entries freed, for the next ones (a thread per request made and freed one) */
static Pool sf_spare_lives = POOL(32, 32);
static int sf_nlives = 0;
/* Threads that ended unshown, oldest first (a ring; keys compared only): past
 * SF_LIFE_GONE the oldest is forgotten, as the Summary forgets its own. */
static struct {
    PyObject *key;
    uint64_t serial;
} sf_gone[SF_LIFE_GONE];
static int sf_gone_first = 0, sf_ngone = 0;

static SfLife *
sf_life_get(PyObject *key)
{
    int i = sf_slot_find((void **)sf_lives, SF_LIFE_SLOTS, key);
    return i >= 0 ? sf_lives[i] : NULL;
}

/* Take the entry of slot i out of the table; the caller frees it. */
static SfLife *
sf_life_unlink(int i)
{
    SfLife *l = sf_lives[i];
    sf_slot_unlink((void **)sf_lives, SF_LIFE_SLOTS, i);
    sf_nlives--;
    return l;
}

/* Free an entry taken out of the table (may run Python code: call last). */
static void
sf_life_free(SfLife *l)
{
    if (l == NULL)
        return;
    for (int k = 0; k < l->nev; k++)
        sf_life_ev_clear(&l->ev[k]);
    PyObject *key = l->key;
    if (!pool_keep(&sf_spare_lives, l))
        PyMem_Free(l);
    let_go_of_state(key);  /* (a thread's state, or a Job) */
}

/* Hold the event (op, obj, site, task, extra at ts), recorded by `by`, in `l`:
 * 1, or 0 when it has no room (the event goes through), -1 with an error. */
static int
sf_life_hold(SfLife *l, PyObject *by, PyObject *op, PyObject *obj, PyObject *site,
             PyObject *task, PyObject *extra, long long ts)
{
    if (l->nev >= SF_LIFE_EVS || site == NULL)
        return 0;
    if (ts == 0 && (ts = now_ll()) == 0)
        return -1;
    if (by != l->key && sf_nlives > 1) {  /* (shown with l, it shows its recorder) */
        SfLife *other = sf_life_get(by);
        if (other != NULL)
            other->cited = 1;
    }
    l->ev[l->nev++] = (SfLifeEv){Py_NewRef(by), Py_NewRef(op), Py_NewRef(obj),
                                 Py_NewRef(site), Py_NewRef(task),
                                 extra == NULL || extra == Py_None ? NULL : Py_NewRef(extra),
                                 ts};
    return 1;
}

/* The `start` (start != 0) or a `join` of the thread whose state is `obj`,
 * recorded by `by`: held back (1) while the Summary has not shown the thread,
 * else 0 (it goes through). */
static int
sf_life_begin(int start, PyObject *by, PyObject *op, PyObject *obj, PyObject *site,
              PyObject *task, PyObject *extra, long long ts)
{
    SfLife *l = sf_life_get(obj);
    if (l == NULL) {
        if (!start || sf_nlives >= SF_LIFE_FILL)
            return 0;
        if ((l = pool_take(&sf_spare_lives)) != NULL)
            l->nev = l->passed = l->cited = 0;
        else if ((l = PyMem_Calloc(1, sizeof(SfLife))) == NULL)
            return 0;
        l->key = Py_NewRef(obj);
        l->serial = sf_next_serial++;
        unsigned i = (unsigned)sf_ptr_hash(obj) & (SF_LIFE_SLOTS - 1);
        while (sf_lives[i] != NULL)
            i = (i + 1) & (SF_LIFE_SLOTS - 1);
        sf_lives[i] = l;
        sf_nlives++;
    }
    return sf_life_hold(l, by, op, obj, site, task, extra, ts);
}

/* The thread or job `key` ended (its `end` or `segment-end`, recorded by `by`):
 * held back (1) when may_hold and nothing of its own went to the Summary, else
 * 0.  It joins the ring of those that ended; *forget is set to the entry that
 * pushed out, if any, for the caller to free last. */
static int
sf_life_end(PyObject *key, int may_hold, PyObject *by, PyObject *op, PyObject *site,
            PyObject *task, PyObject *extra, long long ts, SfLife **forget)
{
    *forget = NULL;
    SfLife *l = sf_life_get(key);
    if (l == NULL)
        return 0;
    int held = l->passed || !may_hold ? 0 : sf_life_hold(l, by, op, key, site, task, extra, ts);
    if (held < 0)
        return -1;
    if (sf_ngone == SF_LIFE_GONE) {
        int k = sf_gone_first;
        sf_gone_first = (k + 1) % SF_LIFE_GONE;
        sf_ngone--;
        int i = sf_slot_find((void **)sf_lives, SF_LIFE_SLOTS, sf_gone[k].key);
        if (i >= 0 && sf_lives[i]->serial == sf_gone[k].serial && sf_lives[i] != l)
            *forget = sf_life_unlink(i);
    }
    int k = (sf_gone_first + sf_ngone++) % SF_LIFE_GONE;
    sf_gone[k].key = l->key;
    sf_gone[k].serial = l->serial;
    return held;
}

/* Something of actor `a` goes to the Summary while the segment-begin of its job
 * is held back here: that segment-begin goes first, into a's buffer (it is a's
 * own event), and the job's segment-end will go through.  0, or -1 with an error. */
static int
sf_seg_release(SfActor *a, PyObject *buf)
{
    if (a == NULL || a->seg == NULL)
        return 0;
    SfLife *l = sf_life_get(a->seg);
    a->seg = NULL;
    int k = a->seg_index;
    if (l == NULL || l->serial != a->seg_serial || k >= l->nev || buf == NULL)
        return 0;  /* (the Summary showed the job meanwhile: it has the segment-begin) */
    l->passed = 1;
    SfLifeEv e = l->ev[k];
    for (int j = k + 1; j < l->nev; j++)
        l->ev[j - 1] = l->ev[j];
    l->nev--;
    PyObject *ev = sf_life_ev(&e);
    PyObject *res = ev != NULL ? buf_append(buf, ev) : NULL;
    Py_XDECREF(ev);
    sf_life_ev_clear(&e);
    if (res == NULL)
        return -1;
    Py_DECREF(res);
    sf_puts++;
    return 0;
}

/* Whether the thread of `st` ended unshown and may stay so: its lifecycle holds
 * its end, nothing of its own went to the Summary, no event that went there names
 * it, and no other held event was recorded by it.  A join after its end or a name
 * given then (recorder.name) can still show it. */
static int
sf_ended_unshown(PyObject *st)
{
    SfLife *l = sf_on ? sf_life_get(st) : NULL;
    if (l == NULL || l->passed || l->cited || l->nev == 0)
        return 0;
    SfLifeEv *e = &l->ev[l->nev - 1];
    return e->by == st && e->obj == st && e->op == sf_op_end;
}

/* An event of `st` went to the Summary: its end must too. */
static inline void
sf_life_passed(PyObject *st)
{
    SfLife *l = sf_life_get(st);
    if (l != NULL)
        l->passed = 1;
}

/* ------------------------------------------------------------------ locks */

static SfLock *
sf_lock(PyObject *obj, int make)
{
    /* (the slot found last: still obj's if it holds obj, as a lock has one slot;
     * an event looks its lock up several times) */
    static SfLock *last = NULL;
    if (last != NULL && last->obj == obj)
        return last;
    unsigned i = (unsigned)sf_ptr_hash(obj) & (SF_LOCK_SLOTS - 1);
    for (;;) {
        SfLock *l = &sf_locks[i];
        if (l->obj == obj)
            return last = l;
        if (l->obj == NULL)
            break;
        i = (i + 1) & (SF_LOCK_SLOTS - 1);
    }
    if (!make || sf_nlocks >= SF_LOCK_FILL)
        return NULL;
    SfLock *l = &sf_locks[i];
    memset(l, 0, sizeof(*l));
    l->obj = Py_NewRef(obj);
    l->mutex = -1;
    l->deps = -1;
    l->own = -1;
    sf_used_mark(&sf_lock_used, i);
    sf_nlocks++;
    return last = l;
}

static inline int sf_countable(PyObject *obj);
static int sf_counts(PyObject *obj, SfLock *l);

/* The filter's generation: its classes as of now (see Ref's sf_* fields). */
static uint32_t sf_gen = 1;

/* (for the tests: summary_stats) lock classes worked out of a definition, scans
 * of a class's first members, lock slots freed at a release */
static long long sf_n_classes_read, sf_n_member_scans, sf_n_slots_freed;

/* The Ref of a traced Lock/RLock that obj is, whose sf_* fields can hold what
 * the filter worked out of it (not for a resource: its class is another hash). */
static inline Ref *
sf_lock_ref(PyObject *obj, int resource)
{
    return !resource && Py_TYPE(obj) == &Ref_Type && ((Ref *)obj)->of_lockcore ? (Ref *)obj : NULL;
}

/* Whether the slot of lock `l` (a Lock or RLock) holds nothing that its next use
 * could not read again: no holder, its holds counted by its class, no wait. */
static inline int
sf_lock_idle(const SfLock *l)
{
    return l->holds == 0 && l->own == 0 && l->open_waits == 0 && l->held_waits == 0
        && l->waiters == NULL && l->loose_waits == 0 && l->npermits == 0
        && l->py_permits == 0 && l->nwoke == 0 && l->ord <= 0;
}

/* Free the slot of `l` now rather than at the writer's next take (the table is
 * probed linearly: the entries after it that it displaced move back).  Locks
 * kept per key or per item (a table entry's, a connection's), each used now and
 * then by several threads, filled the table between two takes, and every event
 * of theirs then went to the Summary, 15 us each.  The caller holds another
 * reference to the lock: the table's is not the last. */
static void
sf_lock_forget(SfLock *l)
{
    const unsigned mask = SF_LOCK_SLOTS - 1;
    unsigned i = (unsigned)(l - sf_locks);
    PyObject *obj = l->obj;
    sf_n_slots_freed++;
    PyMem_Free(l->permits);
    /* (a free slot is one without obj: sf_lock clears the rest when it takes it) */
    l->obj = NULL;
    l->permits = NULL;
    l->npermits = 0;
    sf_nlocks--;
    for (unsigned j = (i + 1) & mask; sf_locks[j].obj != NULL; j = (j + 1) & mask) {
        if (sf_stays(i, j, (unsigned)sf_ptr_hash(sf_locks[j].obj) & mask))
            continue;
        sf_locks[i] = sf_locks[j];
        sf_used_mark(&sf_lock_used, i);
        sf_locks[j].obj = NULL;
        sf_locks[j].permits = NULL;  /* (slot i's now) */
        sf_locks[j].npermits = 0;
        i = j;
    }
    Py_DECREF(obj);
}

static inline int
sf_bucket(long long ns)
{
    if (ns <= 1)
        return 0;
#if defined(__GNUC__) || defined(__clang__)
    int b = 63 - __builtin_clzll((unsigned long long)ns);  /* (the loop: 56 a release) */
#else
    int b = 0;
    for (unsigned long long u = (unsigned long long)ns; u > 1; u >>= 1)
        b++;
#endif
    return b < SF_BUCKETS ? b : SF_BUCKETS - 1;
}

static uint64_t sf_class_of(PyObject *obj, SfLock *l, int resource);
static PyObject *sf_plain_attr(PyObject *obj, PyObject *name);
static void sf_count_hold(SfLock *l, long long ns);

/* Take permit k out of `l` (its references are the caller's now). */
static SfPermit
sf_permit_remove(SfLock *l, int k)
{
    SfPermit p = l->permits[k];
    memmove(&l->permits[k], &l->permits[k + 1], sizeof(SfPermit) * (size_t)(l->npermits - k - 1));
    l->npermits--;
    return p;
}

/* Count a permit of `l` taken by `a` without waiting (1), or 0 (it goes to the
 * Summary).  Past SF_MAX_HELD the oldest is forgotten, as the Summary forgets
 * its own (a semaphore used as a counter: released more than acquired). */
static int
sf_permit_take(SfLock *l, SfActor *a, PyObject *st, PyObject *task, PyObject *site_obj,
               long long t)
{
    long long site = site_obj != NULL && PyLong_CheckExact(site_obj) ? PyLong_AsLongLong(site_obj) : 0;
    if (PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    if (l->permits == NULL && (l->permits = PyMem_Calloc(SF_MAX_HELD, sizeof(SfPermit))) == NULL)
        return 0;
    SfPermit old = {NULL, NULL, 0, 0, 0};
    if (l->npermits >= SF_MAX_HELD)
        old = sf_permit_remove(l, 0);
    SfPermit *p = &l->permits[l->npermits++];
    p->by = Py_NewRef(st);
    p->task = Py_NewRef(task);
    p->actor = a->serial;
    p->site = site;
    p->ts = t;
    Py_XDECREF(old.by);
    Py_XDECREF(old.task);
    return 1;
}

static int sf_put(PyObject *buf, PyObject *by, long long ts_ns, PyObject *op, PyObject *obj,
                  PyObject *site, PyObject *task, PyObject *extra);

/* Hand permit k of `l` to the Summary: its acquire goes on sf_spill.  0, or -1. */
static int
sf_permit_spill(SfLock *l, int k)
{
    SfPermit p = sf_permit_remove(l, k);
    l->py_permits++;
    PyObject *site = PyLong_FromLongLong(p.site);
    int rc = site != NULL ? sf_put(NULL, p.by, p.ts, op_acquire, l->obj, site, p.task, NULL) : -1;
    Py_XDECREF(site);
    Py_DECREF(p.by);
    Py_DECREF(p.task);
    return rc;
}

/* A release of `l` (a semaphore of several permits) by `a` at t: it ends a
 * permit counted here -- a's own oldest, else the oldest (Summary._release) --
 * counted (1), or, held the threshold or longer, handed to the Summary with its
 * acquire, which writes a long hold (0).  One of the Summary's goes to it (0);
 * with none anywhere, it is dropped (1). */
static int
sf_permit_give(SfLock *l, SfActor *a, long long t, int full)
{
    if (l->py_permits > 0) {  /* (the Summary's, which are older) */
        l->py_permits--;
        return 0;
    }
    if (l->npermits == 0)
        return 1;  /* (none taken that anyone knows of: the Summary ignores it) */
    int k = 0;
    for (int j = 0; j < l->npermits; j++) {
        if (l->permits[j].actor == a->serial) {
            k = j;
            break;
        }
    }
    long long hold = t - l->permits[k].ts;
    if (hold >= sf_threshold || full) {
        if (sf_permit_spill(l, k) < 0)
            return -1;
        l->py_permits--;  /* (this release goes to it too) */
        return 0;
    }
    SfPermit p = sf_permit_remove(l, k);
    sf_count_hold(l, hold);
    Py_DECREF(p.by);
    Py_DECREF(p.task);
    return 1;
}

/* The class entry of `cls`, made (named by obj) if new; NULL when the table is full. */
static SfClass *
sf_class_entry(uint64_t cls, PyObject *obj, int make)
{
    unsigned i = (unsigned)cls & (SF_CLASS_SLOTS - 1);
    while (sf_classes[i].cls != 0) {
        if (sf_classes[i].cls == cls)
            return &sf_classes[i];
        i = (i + 1) & (SF_CLASS_SLOTS - 1);
    }
    if (!make || sf_nclasses >= SF_CLASS_FILL)
        return NULL;
    long long *members = PyMem_Calloc((size_t)sf_instances_per_class + 1, sizeof(long long));
    if (members == NULL)
        return NULL;
    SfClass *c = &sf_classes[i];
    memset(c, 0, sizeof(*c));
    c->cls = cls;
    c->obj = Py_NewRef(obj);
    c->members = members;
    c->cap = sf_instances_per_class;
    sf_used_mark(&sf_class_used, i);
    sf_nclasses++;
    return c;
}

/* obj's _ls_id, or -1 when it has none that is read without running Python code. */
static long long
sf_ls_id(PyObject *obj)
{
    if (Py_TYPE(obj) == &Ref_Type) {  /* (what events name: its id without a lookup) */
        PyObject *rid = ((Ref *)obj)->id;
        long long v = rid != NULL && PyLong_CheckExact(rid) ? PyLong_AsLongLong(rid) : -1;
        PyErr_Clear();
        return v;
    }
    PyObject *id = sf_plain_attr(obj, sf_s_ls_id);
    long long oid = id != NULL && PyLong_CheckExact(id) ? PyLong_AsLongLong(id) : -1;
    Py_XDECREF(id);
    PyErr_Clear();
    return oid;
}

/* The creation site of a definition record `d` (borrowed, may be NULL), or 0. */
static long long
sf_def_site(PyObject *d)
{
    PyObject *site = d != NULL && PyDict_CheckExact(d) ? PyDict_GetItemWithError(d, sf_s_site) : NULL;
    long long sid = site != NULL && PyLong_CheckExact(site) ? PyLong_AsLongLong(site) : 0;
    PyErr_Clear();
    return sid > 0 ? sid : 0;
}

/* The place of the object `oid` among the first INSTANCES_PER_CLASS members of
 * class `c` (found, or added while there is room), or -1 past them. */
static int
sf_class_member(SfClass *c, long long oid)
{
    int full = c->nmembers >= sf_instances_per_class || c->nmembers >= c->cap;
    if (full && oid > c->top)
        return -1;
    sf_n_member_scans++;
    for (int k = 0; k < c->nmembers; k++)
        if (c->members[k] == oid)
            return k;
    if (full)
        return -1;
    if (oid > c->top)
        c->top = oid;
    c->members[c->nmembers] = oid;
    return c->nmembers++;
}

/* Where the holds and refusals of `l` are counted: its own histograms for the
 * first INSTANCES_PER_CLASS locks of its class, else its class's. */
static SfHist *
sf_hist_of(SfLock *l)
{
    if (l->own == 0) {
        SfClass *c = sf_class_entry(l->cls, NULL, 0);
        if (c != NULL)
            return &c->h;
    }
    if (l->own != -1)
        return &l->h;
    l->own = 1;
    uint64_t cls = sf_class_of(l->obj, l, 0);
    Ref *r = sf_lock_ref(l->obj, 0);
    if (r != NULL && r->sf_gen == sf_gen && r->sf_own == 0 && cls != 0) {
        /* (known not to be among its class's first: no scan of the members) */
        SfClass *c = sf_class_entry(cls, NULL, 0);
        if (c != NULL) {
            l->own = 0;
            return &c->h;
        }
    }
    long long oid = cls != 0 ? sf_ls_id(l->obj) : -1;
    SfClass *c = oid >= 0 ? sf_class_entry(cls, l->obj, 1) : NULL;
    if (c == NULL || sf_class_member(c, oid) >= 0)
        return &l->h;
    l->own = 0;
    if (r != NULL && r->sf_gen == sf_gen)
        r->sf_own = 0;
    return &c->h;
}

/* The ordering state of resource `obj` (slot `r`): one of the first
 * INSTANCES_PER_CLASS resources of its class (creation site) to be signalled or
 * waited on, by _ls_id, as Summary._ord counts them; NULL for others, threads,
 * jobs, resources without a creation site, or when the class table is full. */
static SfOrd *
sf_ord(PyObject *obj, SfLock *r)
{
    if (r->ord < 0)
        return NULL;
    if (r->ord > 0) {
        SfClass *c = sf_class_entry(r->cls, NULL, 0);
        return c != NULL && c->ord != NULL && r->ord <= c->nmembers ? &c->ord[r->ord - 1] : NULL;
    }
    r->ord = -1;
    if (Py_TYPE(obj) == state_type || Py_TYPE(obj) == &Job_Type)
        return NULL;
    PyObject *d = sf_plain_attr(obj, sf_s_ls_def);
    long long sid = sf_def_site(d);
    Py_XDECREF(d);
    PyErr_Clear();
    long long oid = sid > 0 ? sf_ls_id(obj) : -1;
    uint64_t cls = oid >= 0 ? sf_class_of(obj, r, 1) : 0;
    SfClass *c = cls != 0 ? sf_class_entry(cls, obj, 1) : NULL;
    if (c == NULL)
        return NULL;
    if (c->ord == NULL && (c->ord = PyMem_Calloc((size_t)c->cap + 1, sizeof(SfOrd))) == NULL)
        return NULL;
    int k = sf_class_member(c, oid);
    if (k < 0)
        return NULL;
    r->ord = k + 1;
    return &c->ord[k];
}

/* Count a time of ns into d. */
static void
sf_dist_add(SfDist *d, long long ns)
{
    if (ns < 0)
        ns = 0;
    d->n++;
    d->sum += ns;
    if (ns > d->max)
        d->max = ns;
    d->b[sf_bucket(ns)]++;
}

static void
sf_count_hold(SfLock *l, long long ns)
{
    sf_dist_add(&sf_hist_of(l)->hold, ns);
}

/* ------------------------------------------------------------ dependencies */

/* The dependency (actor's held stack -> obj at site) whose key is h, or the free
 * slot where it goes (h == 0 there), or NULL when not there and the table is full. */
static SfDep *
sf_dep(uint64_t h, SfActor *a, PyObject *obj, long long site)
{
    unsigned i = (unsigned)h & (SF_DEP_SLOTS - 1);
    for (;;) {
        SfDep *d = &sf_deps[i];
        if (d->h == 0)
            return sf_ndeps < SF_DEP_FILL ? d : NULL;
        if (d->h == h && !d->by_class && d->obj == obj && d->site == site && d->depth == a->n) {
            int same = 1;
            for (int k = 0; k < a->n && same; k++)
                same = d->held[k].obj == a->held[k].obj && d->held[k].site == a->held[k].site;
            if (same)
                return d;
        }
        i = (i + 1) & (SF_DEP_SLOTS - 1);
    }
}

static int
sf_dep_fill(SfDep *d, uint64_t h, SfActor *a, PyObject *obj, long long site)
{
    SfPair *held = NULL;
    if (a->n) {
        held = PyMem_Malloc(sizeof(SfPair) * (size_t)a->n);
        if (held == NULL)
            return -1;
        for (int k = 0; k < a->n; k++) {
            held[k].obj = Py_NewRef(a->held[k].obj);
            held[k].site = a->held[k].site;
        }
    }
    d->h = h;
    d->obj = Py_NewRef(obj);
    d->site = site;
    d->depth = a->n;
    d->held = held;
    d->n = d->first = d->last = 0;
    d->nactors = 0;
    sf_ndeps++;
    return 0;
}

/* ---------------------------------------------------------------- the stack */

static PyObject *sf_remove(SfActor *a, int k);

/* Push an entry; returns the reference to drop when the stack was full (its
 * oldest entry forgotten, as the Summary does), else NULL; *err on error.  `sig`
 * and `l`, when known (else 0 and NULL): the entry's signature (sf_mix of the top
 * entry's with obj and site) and obj's lock entry. */
static PyObject *
sf_push(SfActor *a, PyObject *obj, long long site, long long ts, int counted, uint64_t sig,
        SfLock *l, int *err)
{
    *err = 0;
    if (a->n >= a->cap) {
        int cap = a->cap ? a->cap * 2 : 4;
        SfHeld *held = PyMem_Realloc(a->held, sizeof(SfHeld) * (size_t)cap);
        if (held == NULL) {
            *err = -1;
            return NULL;
        }
        a->held = held;
        a->cap = cap;
    }
    SfHeld *e = &a->held[a->n];
    e->obj = Py_NewRef(obj);
    e->site = site;
    e->ts = ts;
    e->sig = sig != 0 ? sig : sf_mix(a->n ? a->held[a->n - 1].sig : 0, obj, site);
    e->counted = counted;
    a->n++;
    a->ncounted += counted;
    if (l == NULL)
        l = sf_lock(obj, 1);
    if (l != NULL) {
        l->holds++;
        l->counted_holds += counted;
        l->holder = a->key;
        l->holder_serial = a->serial;
    }
    if (a->n > SF_MAX_HELD)  /* acquired and never released: forget the oldest */
        return sf_remove(a, 0);
    return NULL;
}

/* Remove entry k of the stack; returns its object (the caller drops it, last). */
static PyObject *
sf_remove(SfActor *a, int k)
{
    PyObject *obj = a->held[k].obj;
    int counted = a->held[k].counted;
    SfLock *l = sf_lock(obj, 0);
    if (l != NULL) {
        if (l->holds > 0)
            l->holds--;
        if (counted && l->counted_holds > 0)
            l->counted_holds--;
        /* (below the mark, a lock used again soon keeps its slot) */
        if (sf_nlocks >= SF_LOCK_MARK && sf_countable(obj) && sf_lock_idle(l))
            sf_lock_forget(l);
    }
    a->ncounted -= counted;
    for (int j = k; j < a->n - 1; j++) {
        a->held[j] = a->held[j + 1];
        a->held[j].sig = sf_mix(j ? a->held[j - 1].sig : 0, a->held[j].obj, a->held[j].site);
    }
    a->n--;
    if (a->n == 0)
        a->tainted = 0;
    return obj;
}

/* Put an event (stamped ts_ns) for the Summary: into buf, or, when buf is
 * NULL, on sf_spill as recorded by `by`.  0, or -1 with an error. */
static int
sf_put(PyObject *buf, PyObject *by, long long ts_ns, PyObject *op, PyObject *obj,
       PyObject *site, PyObject *task, PyObject *extra)
{
    if (buf != NULL)
        return buffer_put(buf, NULL, ts_ns, op, obj, site, task, extra);
    PyObject *items[6] = {NULL, op, obj, site, task, extra};
    PyObject *ev = ev_new_ns(extra != NULL ? 6 : 5, ts_ns, items);
    PyObject *pair = ev != NULL ? PyTuple_Pack(2, by, ev) : NULL;
    int rc = -1;
    if (pair != NULL && (sf_spill != NULL || (sf_spill = PyList_New(0)) != NULL))
        rc = PyList_Append(sf_spill, pair);
    Py_XDECREF(pair);
    Py_XDECREF(ev);
    return rc;
}

/* Buffer the acquires of the actor's locks that were counted here, oldest first,
 * so that the Summary sees the held set the event after them is judged with
 * (into buf; or, buf NULL, on sf_spill as recorded by `by`). */
static int
sf_resend_to(SfActor *a, PyObject *buf, PyObject *by)
{
    if (buf != NULL && sf_seg_release(a, buf) < 0)  /* (before what it held: see sf_seg_release) */
        return -1;
    for (int k = 0; k < a->n && a->ncounted > 0; k++) {
        SfHeld *e = &a->held[k];
        if (!e->counted)
            continue;
        /* (the entry is updated before the put: allocating may run a collection,
         * and finalizers let other threads change the stacks meanwhile) */
        PyObject *obj = Py_NewRef(e->obj);
        long long ts_ns = e->ts, site_id = e->site;
        e->counted = 0;
        a->ncounted--;
        SfLock *l = sf_lock(obj, 0);
        if (l != NULL && l->counted_holds > 0)
            l->counted_holds--;
        PyObject *site = PyLong_FromLongLong(site_id);
        int rc = site ? sf_put(buf, by, ts_ns, op_acquire, obj, site, a->task, sf_counted) : -1;
        Py_XDECREF(site);
        Py_DECREF(obj);
        if (rc < 0)
            return -1;
        if (buf != NULL)
            sf_puts++;  /* counted() once the filter is done (it may run Python code) */
        sf_resent++;
    }
    return 0;
}

static int
sf_resend(SfActor *a, PyObject *buf)
{
    return sf_resend_to(a, buf, NULL);
}

/* An event of `a` goes to the Summary: after the counted acquires of its held
 * set, or, its buffer full (the event lost), `a` lets everything through until
 * it holds nothing (tainted).  Returns 0 (through), or -1 with an error. */
static int
sf_through(SfActor *a, PyObject *buf, int full)
{
    if (full) {
        a->tainted = 1;
        return 0;
    }
    return sf_resend(a, buf);
}

/* The lock wait `a` held back goes to the Summary after all (it lasted the
 * threshold, or ended otherwise than by the acquire), with the held set it is
 * judged with: into buf, or (buf NULL) on sf_spill.  The acquire that ends it
 * then goes through too (a->waiting).  0, or -1 with an error. */
static int
sf_lw_put(SfActor *a, PyObject *buf)
{
    PyObject *obj = a->lw_obj, *site = a->lw_site, *by = a->lw_by;
    long long ts = a->lw_ts;
    a->lw_obj = a->lw_site = a->lw_by = NULL;
    sf_nlw--;
    a->waiting = obj;
    int rc = sf_resend_to(a, buf, by);
    if (rc == 0)
        rc = sf_put(buf, by, ts, sf_op_wait, obj, site, a->task, NULL);
    if (rc == 0 && buf != NULL)
        sf_puts++;
    Py_DECREF(obj);
    Py_DECREF(site);
    Py_DECREF(by);
    return rc;
}

/* ---------------------------------------------------------------- the filter */

/* Is the lock `obj` one whose acquires may be counted here: a traced
 * threading.Lock/RLock (every one is a mutex), or the Ref that its events name. */
static inline int
sf_countable(PyObject *obj)
{
    return (Py_TYPE(obj) == &Ref_Type && ((Ref *)obj)->of_lockcore)
        || PyObject_TypeCheck(obj, &LockCore_Type);
}

/* obj.<name> when reading it runs no Python code (a slot, or the instance dict of
 * a type with the generic getattr and no Python descriptor of that name): new
 * reference, or NULL with no error set.  Python code could let other threads run
 * (and the writer change the tables) in the middle of the filter. */
static PyObject *
sf_plain_attr(PyObject *obj, PyObject *name)
{
    PyTypeObject *tp = Py_TYPE(obj);
    if (name == sf_s_ls_def && (tp == &Ref_Type || PyObject_TypeCheck(obj, &LockCore_Type)
                                || PyObject_TypeCheck(obj, &CondHooks_Type))) {
        /* (a lazy definition is not made for this: its prototype has what the
         * filter reads of it, its kind, type and site) */
        Ref *r = NULL;
        if (tp == &Ref_Type) {
            r = (Ref *)Py_NewRef(obj);
        }
        else if (PyObject_TypeCheck(obj, &LockCore_Type)) {
            LockCore *lk = (LockCore *)obj;
            if (lk->def != NULL)
                return Py_NewRef(lk->def);
            if (lk->ref != NULL && Py_TYPE(lk->ref) == &Ref_Type)
                r = (Ref *)Py_NewRef(lk->ref);
        }
        else if ((r = cond_ref(obj)) == NULL) {
            PyErr_Clear();
            return NULL;
        }
        if (r == NULL)
            return NULL;
        PyObject *d = Py_XNewRef(ref_lazy(r) ? PyTuple_GET_ITEM(r->text, 7) : r->def);
        Py_DECREF(r);
        return d;
    }
    if (tp->tp_getattro != PyObject_GenericGetAttr)
        return NULL;
    PyObject *desc = _PyType_Lookup(tp, name);  /* borrowed */
    if (desc != NULL && Py_TYPE(desc) != &PyMemberDescr_Type)
        return NULL;
    PyObject *v = PyObject_GenericGetAttr(obj, name);
    if (v == NULL)
        PyErr_Clear();
    return v;
}

/* What the definition of `obj` (not a LockCore) says of it, remembered in its slot
 * `l` (may be NULL): *mutex, holding it excludes others (recorder/_summary.py
 * is_mutex: not a semaphore of several permits); *deps, its acquires are counted
 * here as dependencies, as a traced threading.Lock/RLock's are (sf_countable):
 * an asyncio.Lock's, a mutex whose events come from its Python methods. */
static void
sf_read_kind(PyObject *obj, SfLock *l, int *mutex, int *deps)
{
    *mutex = 1;
    *deps = 0;
    PyObject *d = sf_plain_attr(obj, sf_s_ls_def);
    if (d != NULL && PyDict_CheckExact(d)) {
        PyObject *type = PyDict_GetItemWithError(d, sf_s_type);  /* borrowed */
        PyObject *value = PyDict_GetItemWithError(d, sf_s_value);
        if (type != NULL && PyUnicode_CheckExact(type)) {
            if (PyUnicode_Find(type, sf_s_semaphore, 0, PY_SSIZE_T_MAX, 1) >= 0
                    && value != NULL && PyLong_CheckExact(value) && PyLong_AsLong(value) != 1)
                *mutex = 0;
            *deps = PyUnicode_Compare(type, sf_s_aio_lock) == 0;
        }
    }
    Py_XDECREF(d);
    PyErr_Clear();
    if (l != NULL) {
        l->mutex = *mutex;
        l->deps = *deps;
    }
}

/* Whether holding `obj` excludes others (see sf_read_kind). */
static int
sf_is_mutex(PyObject *obj, SfLock *l)
{
    if (sf_countable(obj))
        return 1;
    if (l != NULL && l->mutex >= 0)
        return l->mutex;
    int mutex, deps;
    sf_read_kind(obj, l, &mutex, &deps);
    return mutex;
}

/* Whether the acquires of `obj` are counted here as dependencies (see
 * sf_read_kind). */
static int
sf_counts(PyObject *obj, SfLock *l)
{
    if (sf_countable(obj))
        return 1;
    if (l != NULL && l->deps >= 0)
        return l->deps;
    int mutex, deps;
    sf_read_kind(obj, l, &mutex, &deps);
    return deps;
}

/* A release by an actor of a lock it does not hold (as far as this filter knows):
 * a lock handed off, released by another actor than the one that took it last.
 * That actor's hold of it ends here.  Returns 1 when that hold was counted here
 * (counted, and the release is not buffered), else 0; *drop: a reference to drop,
 * *zombie: an ended actor to free (both last). */
static int
sf_handoff(PyObject *obj, long long t, PyObject **drop, SfActor **zombie)
{
    SfLock *l = sf_lock(obj, 0);
    if (l == NULL || l->holds <= 0 || l->holder == NULL)
        return 0;
    int i = sf_actor_find(l->holder);
    if (i < 0)
        return 0;
    SfActor *o = sf_actors[i];
    if (o->serial != l->holder_serial)
        return 0;
    for (int k = 0; k < o->n; k++) {
        if (o->held[k].obj != obj)
            continue;
        int counted = o->held[k].counted;
        if (counted)
            sf_count_hold(l, t - o->held[k].ts);
        *drop = sf_remove(o, k);
        if (o->ended && o->ncounted == 0) {  /* nothing more to wait for: forget it */
            sf_actor_unlink(i);
            *zombie = o;
        }
        return counted;
    }
    return 0;
}

/* The class of a traced object, as recorder/_summary.py lock_class() keys it: a
 * lock by its creation site and type, a resource by its creation site, either
 * by its id when it has no site.  Remembered in its slot `l` (may be NULL). */
static uint64_t
sf_class_of(PyObject *obj, SfLock *l, int resource)
{
    if (l != NULL && l->cls)
        return l->cls;
    Ref *r = sf_lock_ref(obj, resource);
    if (r != NULL && r->sf_gen == sf_gen) {
        if (l != NULL)
            l->cls = r->sf_cls;
        return r->sf_cls;
    }
    uint64_t h = 0;
    sf_n_classes_read++;
    PyObject *d = sf_plain_attr(obj, sf_s_ls_def);
    long long sid = sf_def_site(d);
    if (sid > 0) {
        h = sf_mix(0x5173, NULL, sid);
        PyObject *type = resource ? NULL : PyDict_GetItemWithError(d, sf_s_type);
        if (type != NULL && PyUnicode_CheckExact(type))
            h = sf_mix(h, NULL, (long long)PyObject_Hash(type));
    }
    Py_XDECREF(d);
    long long oid = h ? -1 : sf_ls_id(obj);
    if (oid >= 0)
        h = sf_mix(0x1d1d, NULL, oid);
    PyErr_Clear();
    if (l != NULL)
        l->cls = h;
    if (r != NULL && h != 0) {
        r->sf_cls = h;
        r->sf_own = -1;
        r->sf_gen = sf_gen;
    }
    return h;  /* 0: not known without running Python code */
}

/* The dependency of lock classes of the actor's held stack -> obj at site (found,
 * or made with `made` 0), or NULL when a class is not known without running
 * Python code or the table is full.  The Summary keys it the same way
 * (recorder/_summary.py _class_dep): each held lock's class and site, the lock's
 * class, the site. */
static SfDep *
sf_class_dep(SfActor *a, PyObject *obj, long long site)
{
    uint64_t c = sf_class_of(obj, sf_lock(obj, 0), 0);
    if (c == 0)
        return NULL;
    uint64_t h = sf_mix(sf_mix(0xC1A55ULL, NULL, (long long)c), NULL, site);
    for (int k = 0; k < a->n; k++) {
        SfHeld *e = &a->held[k];
        uint64_t hc = sf_class_of(e->obj, sf_lock(e->obj, 0), 0);
        if (hc == 0)
            return NULL;
        h = sf_mix(sf_mix(h, NULL, (long long)hc), NULL, e->site);
    }
    unsigned i = (unsigned)h & (SF_DEP_SLOTS - 1);
    for (;;) {
        SfDep *d = &sf_deps[i];
        if (d->h == h && d->by_class)
            return d;
        if (d->h == 0) {
            if (sf_ndeps >= SF_DEP_FILL || sf_dep_fill(d, h, a, obj, site) < 0) {
                PyErr_Clear();
                return NULL;
            }
            d->by_class = 1;
            d->made = 0;
            return d;
        }
        i = (i + 1) & (SF_DEP_SLOTS - 1);
    }
}

/* The hash of a kind of event of `a`: `h` (what it is about), then the class and
 * site of each lock `a` holds; 0 when a class is not known without running
 * Python code. */
static uint64_t
sf_kind_hash(SfActor *a, uint64_t h)
{
    for (int k = 0; k < a->n; k++) {
        SfHeld *e = &a->held[k];
        uint64_t c = sf_class_of(e->obj, sf_lock(e->obj, 0), 0);
        if (c == 0)
            return 0;
        h = sf_mix(h, NULL, (long long)c);
        h = sf_mix(h, NULL, e->site);
    }
    return h;
}

/* Whether the kind `h` went through for `a`, or for SF_ACTORS_PER_DEP actors,
 * already (Summary._seen); if not, it does now (0; also when the table is full). */
static int
sf_kind_seen(SfActor *a, uint64_t h)
{
    unsigned i = (unsigned)h & (SF_KIND_SLOTS - 1);
    for (;;) {
        SfKind *kd = &sf_kinds[i];
        if (kd->h == h) {
            int known = kd->nactors >= SF_ACTORS_PER_DEP;
            for (int k = 0; k < kd->nactors && !known; k++)
                known = kd->actors[k] == a->serial;
            if (known)
                return 1;
            kd->actors[kd->nactors++] = a->serial;
            return 0;
        }
        if (kd->h == 0) {
            if (sf_nkinds >= SF_KIND_FILL)
                return 0;
            kd->h = h;
            kd->nactors = 1;
            kd->actors[0] = a->serial;
            sf_nkinds++;
            return 0;
        }
        i = (i + 1) & (SF_KIND_SLOTS - 1);
    }
}

/* A signal of a kind already seen, on resource `r` on which a wait the Summary
 * may have written is open: the Summary writes the first such signal of each
 * actor, up to SF_ACTORS_PER_DEP of them, until that list starts again (a
 * written wait on it begins, or the last one ends).  The list here starts again
 * at each wait-begin and wait-end on it, and whenever the writer took a buffer:
 * a signal it holds back was preceded, in the same process() of the Summary and
 * with nothing on `r` between, by one of the same actor that went through.
 * Whether `a` is in the list (1: held back), else added (0: through). */
static int
sf_woke(SfLock *r, SfActor *a)
{
    if (r->woke_epoch != sf_epoch) {
        r->woke_epoch = sf_epoch;
        r->nwoke = 0;
    }
    for (int k = 0; k < r->nwoke; k++)
        if (r->woke[k] == a->serial)
            return 1;
    if (r->nwoke >= SF_ACTORS_PER_DEP)
        return 1;
    r->woke[r->nwoke++] = a->serial;
    return 0;
}

/* Whether a signal (sig, at site_obj, on resource obj) of `a` need not go to the
 * Summary: its kind (resource class, sig, site, classes of the locks held) went
 * through for `a` or SF_ACTORS_PER_DEP actors, and no wait on it that the
 * Summary may have written is open (one begun holding a lock, or older than the
 * threshold), or one is but the Summary writes this signal not (see sf_woke).
 * (A pool's idle workers wait on its queue in turns: there is nearly always one
 * open, and while the submitting thread keeps the GIL it grows old.) */
static int
sf_signal_seen(SfActor *a, PyObject *obj, PyObject *site_obj, PyObject *sig)
{
    SfLock *r = sf_lock(obj, 1);
    if (r == NULL || (sig != NULL && !PyUnicode_CheckExact(sig)))
        return 0;
    long long site = site_obj != NULL && PyLong_CheckExact(site_obj) ? PyLong_AsLongLong(site_obj) : 0;
    Py_hash_t sh = sig != NULL ? PyObject_Hash(sig) : 0;
    uint64_t cls = sf_class_of(obj, r, 1);
    if (cls == 0 || PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    uint64_t h = sf_kind_hash(a, sf_mix(sf_mix(cls, NULL, (long long)sh), NULL, site));
    if (h == 0 || !sf_kind_seen(a, h))
        return 0;
    if (r->held_waits > 0 || (r->open_waits > 0 && sf_old_wait(r, mono_now())))
        return sf_woke(r, a);
    return 1;
}

/* Whether a refused non-blocking acquire of `obj` by `a` need not go to the
 * Summary: its kind (lock class, site, classes of the locks held) went through
 * for `a` or SF_ACTORS_PER_DEP actors (Summary._try_fail).  It is counted in the
 * lock's refusals then. */
static int
sf_try_fail_seen(SfActor *a, PyObject *obj, PyObject *site_obj)
{
    SfLock *l = sf_lock(obj, 1);
    uint64_t cls = l != NULL ? sf_class_of(obj, l, 0) : 0;
    if (cls == 0)
        return 0;
    long long site = site_obj != NULL && PyLong_CheckExact(site_obj) ? PyLong_AsLongLong(site_obj) : 0;
    uint64_t h = sf_kind_hash(a, sf_mix(sf_mix(cls, NULL, 0x7f41), NULL, site));
    if (h == 0 || PyErr_Occurred() || !sf_kind_seen(a, h)) {
        PyErr_Clear();
        return 0;
    }
    sf_hist_of(l)->fails++;
    return 1;
}

/* Count an acquire of `obj` at `site` (time t) under dependency `d`, here: the
 * lock goes on the actor's stack as counted (its signature `sig` and lock entry
 * `l`, as sf_push takes them).  1, or -1 with an error. */
static int
sf_count_dep(SfActor *a, SfDep *d, PyObject *obj, long long site, long long t, uint64_t sig,
             SfLock *l)
{
    int err;
    PyObject *drop = sf_push(a, obj, site, t, 1, sig, l, &err);
    if (err < 0)
        return -1;
    if (d->n == 0 || t < d->first)
        d->first = t;
    if (t > d->last)
        d->last = t;
    d->n++;
    Py_XDECREF(drop);
    return 1;
}

/* A `pass` (a wait that found its resource signalled): dropped (1), but for
 * the resource's first SF_ORD_PER_RESOURCE while all its signals so far went
 * through (its first ones): those go through (0), so that the analyzer orders
 * the last signaller before the passer. */
static int
sf_first_pass(PyObject *st, PyObject *buf, int full, PyObject *obj, PyObject *task)
{
    SfLock *r = full ? NULL : sf_lock(obj, 1);
    SfOrd *o = r != NULL ? sf_ord(obj, r) : NULL;
    if (o == NULL || o->npass >= SF_ORD_PER_RESOURCE || o->nsig == 0
            || o->nsig > SF_ORD_PER_RESOURCE || o->lost)
        return 1;
    SfActor *a = sf_actor(task != Py_None ? task : st, task);
    if (a == NULL || a->tainted)
        return 1;
    o->npass++;
    return sf_through(a, buf, full);
}

/* sumc_filter: called once for every event about to be buffered (record() and
 * append()), with the thread's state and buffer.  `ts` may be NULL (now); `full`:
 * the event will not fit (it is lost unless counted here).
 * Returns 1 when the event was counted here (do not buffer it), 0 to buffer it
 * (what it needed first is buffered), -1 with an error set. */
static int
sf_filter(PyObject *st, PyObject *buf, int full, PyObject *op, PyObject *obj,
          PyObject *site_obj, PyObject *task, PyObject *extra, long long ts)
{
    int is_acq = op == op_acquire, is_rel = op == op_release;
    if (!is_acq && !is_rel) {
        if (sf_op_is(op, sf_op_pass))
            return sf_first_pass(st, buf, full, obj, task);
        if (sf_op_is(op, sf_op_suspend) || sf_op_is(op, sf_op_resume))
            return 1;  /* the Summary drops them */
        is_acq = sf_op_is(op, op_acquire);
        is_rel = !is_acq && sf_op_is(op, op_release);
    }
    PyObject *key = task != Py_None ? task : st;
    if (!is_acq && !is_rel) {
        int is_start = sf_op_is(op, sf_op_start);
        if (is_start || sf_op_is(op, sf_op_join)) {  /* (judged without the held set) */
            if (full || Py_TYPE(obj) != state_type)
                return 0;
            return sf_life_begin(is_start, st, op, obj, site_obj, task, extra, ts);
        }
        if (obj == key && sf_op_is(op, sf_op_end)) {
            /* the actor ended: forget it, unless it holds counted locks that
             * another actor may release (a lock handed off) */
            int i = sf_actor_find(key);
            SfActor *a = i >= 0 ? sf_actors[i] : NULL;
            if (a != NULL && a->ncounted > 0) {
                a->ended = 1;
                a = NULL;
                sf_life_passed(st);
            }
            else if (a != NULL) {
                sf_actor_unlink(i);
            }
            SfLife *forget = NULL;
            int held = task != Py_None || Py_TYPE(st) != state_type ? 0
                : sf_life_end(st, !full, st, op, site_obj, task, extra, ts, &forget);
            if (a != NULL)
                sf_actor_free(a);
            sf_life_free(forget);
            return held;
        }
        int is_seg_begin = sf_op_is(op, sf_op_seg_begin);
        if ((is_seg_begin || sf_op_is(op, sf_op_seg_end)) && Py_TYPE(obj) == &Job_Type) {
            SfActor *a = sf_actor(key, task);
            if (a == NULL || full)
                return 0;
            if (is_seg_begin) {
                if (a->seg != NULL)
                    return 0;  /* (a job run inside a job: this one goes through) */
                int held = sf_life_begin(1, st, op, obj, site_obj, task, extra, ts);
                SfLife *l = held > 0 ? sf_life_get(obj) : NULL;
                if (l != NULL) {
                    a->seg = obj;
                    a->seg_serial = l->serial;
                    a->seg_index = l->nev - 1;
                }
                return held;
            }
            SfLife *l = a->seg == obj ? sf_life_get(obj) : NULL;
            int quiet = l != NULL && l->serial == a->seg_serial;
            if (a->seg == obj)
                a->seg = NULL;
            SfLife *forget = NULL;
            int held = sf_life_end(obj, quiet, st, op, site_obj, task, extra, ts, &forget);
            sf_life_free(forget);
            return held;
        }
        if (sf_op_is(op, sf_op_wait_begin)) {  /* (see sf_signal_seen) */
            SfLock *r = sf_lock(obj, 1);
            if (r != NULL) {
                r->open_waits++;
                r->nwoke = 0;
                SfActor *a = sf_actor(key, task);
                if (a != NULL && a->wait_res == NULL) {
                    a->wait_res = obj;
                    a->wait_since = mono_now();
                    a->wait_next = r->waiters;
                    r->waiters = a;
                }
                else if (r->loose_waits++ == 0) {
                    r->open_since = mono_now();
                }
                /* (a wait begun holding a lock, or the resource's first: written) */
                SfOrd *o = a != NULL && a->held_wait == NULL ? sf_ord(obj, r) : NULL;
                int first = o != NULL && o->nwait < SF_ORD_PER_RESOURCE && !full;
                if (first)
                    o->waiters[o->nwait++] = key;
                if (a != NULL && (a->n > 0 || first) && a->held_wait == NULL) {
                    r->held_waits++;
                    a->held_wait = obj;
                }
            }
        }
        else if (sf_op_is(op, sf_op_wait_end)) {
            SfLock *r = sf_lock(obj, 0);
            if (r != NULL)
                r->nwoke = 0;
            if (r != NULL && r->open_waits > 0)
                r->open_waits--;
            int i = sf_actor_find(key);
            SfActor *a = i >= 0 ? sf_actors[i] : NULL;
            if (a != NULL && a->wait_res == obj)
                sf_unlist_waiter(a);
            else if (r != NULL && r->loose_waits > 0)
                r->loose_waits--;
            if (a != NULL && a->held_wait == obj) {
                a->held_wait = NULL;
                if (r != NULL && r->held_waits > 0)
                    r->held_waits--;
            }
        }
        else if (sf_op_is(op, sf_op_signal)) {
            PyObject *sig = extra != NULL && PyDict_Check(extra)
                ? PyDict_GetItemWithError(extra, sf_s_sig) : NULL;  /* borrowed */
            if (sig == NULL && PyErr_Occurred())
                return -1;
            if (sig != NULL && PyUnicode_Check(sig) && PyUnicode_Compare(sig, sf_s_submit) == 0)
                /* a job's submission: written with the job, if at all */
                return full || Py_TYPE(obj) != &Job_Type ? 0
                    : sf_life_begin(1, st, op, obj, site_obj, task, extra, ts);
            SfActor *a = sf_actor(key, task);
            if (a == NULL)
                return 0;
            SfLock *r = sf_lock(obj, 1);
            SfOrd *o = r != NULL ? sf_ord(obj, r) : NULL;
            if (o != NULL && o->nsig <= SF_ORD_PER_RESOURCE && o->nsig++ < SF_ORD_PER_RESOURCE) {
                /* one of the resource's first: written */
                if (full)
                    o->lost = 1;
                else
                    o->signallers[o->nsig - 1] = key;
                return sf_through(a, buf, full);
            }
            if (!full && !a->tainted && sf_signal_seen(a, obj, site_obj, sig))
                return 1;
            return sf_through(a, buf, full);
        }
        if (sf_op_is(op, sf_op_wait)) {
            /* a lock wait: held back (see sf_lw_put), or it goes through, and so
             * does the acquire that ends it */
            SfActor *a = sf_actor(key, task);
            if (a == NULL)
                return 0;
            a->waiting = obj;
            /* (the Summary writes who holds the permits of what it waits for) */
            SfLock *pl = sf_lock(obj, 0);
            while (pl != NULL && pl->npermits > 0)
                if (sf_permit_spill(pl, 0) < 0)
                    return -1;
            if (!full && !a->tainted && a->lw_obj == NULL && sf_counts(obj, pl) && site_obj != NULL
                    && (ts != 0 || (ts = now_ll()) != 0)) {
                /* held back: most lock waits end within the threshold */
                a->waiting = NULL;
                a->lw_obj = Py_NewRef(obj);
                a->lw_site = Py_NewRef(site_obj);
                a->lw_by = Py_NewRef(st);
                a->lw_ts = ts;
                sf_nlw++;
                return 1;
            }
            return sf_through(a, buf, full);
        }
        if (sf_op_is(op, sf_op_try_fail)) {
            SfActor *a = sf_actor(key, task);
            if (a == NULL)
                return 0;
            if (!full && !a->tainted && sf_try_fail_seen(a, obj, site_obj))
                return 1;
            return sf_through(a, buf, full);
        }
        int i = sf_actor_find(key);
        if (i < 0)
            return 0;
        SfActor *a = sf_actors[i];
        if (sf_op_is(op, sf_op_name) || sf_op_is(op, sf_op_seg_begin) || sf_op_is(op, sf_op_seg_end)
                || sf_op_is(op, sf_op_resync) || sf_op_is(op, sf_op_dropped) || sf_op_is(op, sf_op_end))
            return 0;  /* judged without the held set */
        if (a->lw_obj != NULL && sf_lw_put(a, full ? NULL : buf) < 0)
            return -1;  /* (a wait given up, or anything else: the wait goes first) */
        if (a->waiting == obj && (sf_op_is(op, sf_op_timeout) || sf_op_is(op, sf_op_cancel)))
            a->waiting = NULL;
        return sf_through(a, buf, full);
    }

    SfActor *a = sf_actor(key, task);
    if (a == NULL)
        return 0;  /* table full: the Summary judges */
    long long t = ts != 0 ? ts : mono_now();

    if (is_rel) {
        for (int k = a->n - 1; k >= 0; k--) {
            SfHeld *e = &a->held[k];
            if (e->obj != obj)
                continue;
            if (e->counted) {
                long long hold = t - e->ts;
                if (hold >= sf_threshold && !full) {
                    /* a long hold: the Summary writes its acquire and release */
                    if (sf_resend(a, buf) < 0)
                        return -1;
                    for (int j = a->n - 1; j >= 0; j--) {  /* (the stack may have moved) */
                        if (a->held[j].obj == obj) {
                            Py_DECREF(sf_remove(a, j));
                            break;
                        }
                    }
                    return 0;
                }
                SfLock *l = sf_lock(obj, 0);
                if (l != NULL)
                    sf_count_hold(l, hold);
                Py_DECREF(sf_remove(a, k));  /* (the caller holds the lock: not the last ref) */
                return 1;
            }
            Py_DECREF(sf_remove(a, k));
            return 0;
        }
        SfLock *pl = sf_countable(obj) ? NULL : sf_lock(obj, 1);
        if (pl != NULL && !sf_is_mutex(obj, pl))
            return sf_permit_give(pl, a, t, full);
        PyObject *drop = NULL;
        SfActor *zombie = NULL;
        int handed = sf_handoff(obj, t, &drop, &zombie);
        Py_XDECREF(drop);
        if (zombie != NULL)
            sf_actor_free(zombie);
        return handed;
    }

    /* an acquire */
    long long site = 0;
    if (site_obj != NULL && site_obj != Py_None) {
        site = PyLong_AsLongLong(site_obj);
        if (site == -1 && PyErr_Occurred())
            return -1;
    }
    if (a->lw_obj != NULL) {
        long long wait_ns = t - a->lw_ts;
        SfLock *wl = a->lw_obj == obj && wait_ns < sf_threshold ? sf_lock(obj, 1) : NULL;
        if (wl != NULL) {  /* a short wait: counted, and the acquire is one that did not wait */
            sf_dist_add(&sf_hist_of(wl)->wait, wait_ns);
            sf_nlw--;
            Py_CLEAR(a->lw_obj);
            Py_CLEAR(a->lw_site);
            Py_CLEAR(a->lw_by);
        }
        else if (sf_lw_put(a, full ? NULL : buf) < 0) {
            return -1;
        }
    }
    int waited = a->waiting == obj;
    if (waited)
        a->waiting = NULL;
    int countable = sf_countable(obj);
    SfLock *pl = countable ? NULL : sf_lock(obj, 1);
    if (!countable && !sf_is_mutex(obj, pl)) {
        /* a semaphore of several permits: no dependency, not in the held set (the
         * Summary reads the held set only if the acquire ends a wait) */
        if (full) {
            a->tainted = 1;
            return 0;
        }
        if (!waited && pl != NULL && pl->py_permits == 0 && !a->tainted
                && sf_permit_take(pl, a, st, task, site_obj, t))
            return 1;
        if (pl != NULL)
            pl->py_permits++;
        return waited ? sf_resend(a, buf) : 0;
    }
    if (!countable)
        countable = sf_counts(obj, pl);
    SfDep *d = NULL;
    uint64_t h = 0;
    if (!a->tainted && !full && !waited && countable) {
        h = sf_mix(a->n ? a->held[a->n - 1].sig : 0, obj, site);
        d = sf_dep(h, a, obj, site);
        if (d != NULL && d->h != 0) {
            int known = d->nactors >= SF_ACTORS_PER_DEP;
            for (int k = 0; k < d->nactors && !known; k++)
                known = d->actors[k] == a->serial;
            SfLock *l = known ? sf_lock(obj, 1) : NULL;
            if (l != NULL)
                return sf_count_dep(a, d, obj, site, t, h, l);
        }
        else {  /* new on these locks (or no room for it): perhaps not on their classes */
            SfDep *c = sf_class_dep(a, obj, site);
            SfLock *l = c != NULL && c->made >= sf_instances_per_class ? sf_lock(obj, 1) : NULL;
            if (l != NULL)
                return sf_count_dep(a, c, obj, site, t, h, l);
            if (c != NULL)
                c->made++;
            d = sf_dep(h, a, obj, site);  /* (the class's may have taken d's slot) */
        }
    }
    /* let it through: the Summary judges it with the held set */
    if (full) {
        a->tainted = 1;  /* (lost: the Summary learns of it from the resync record, no site) */
        site = 0;
    }
    else {
        if (d != NULL && d->h == 0 && sf_dep_fill(d, h, a, obj, site) < 0)
            return -1;
        if (d != NULL) {
            int known = 0;
            for (int k = 0; k < d->nactors && !known; k++)
                known = d->actors[k] == a->serial;
            if (!known && d->nactors < SF_ACTORS_PER_DEP)
                d->actors[d->nactors++] = a->serial;
        }
        if (sf_resend(a, buf) < 0)
            return -1;
    }
    int err;
    PyObject *drop = sf_push(a, obj, site, t, 0, 0, NULL, &err);
    Py_XDECREF(drop);
    return err;
}

static PyObject *sf_clear_tables(void);

static int
sumc_filter(PyObject *st, PyObject *buf, int full, PyObject *op, PyObject *obj,
            PyObject *site_obj, PyObject *task, PyObject *extra, long long ts)
{
    /* An op from Python code may be a str that is not interned ("wait-begin" is
     * no identifier): the filter compares ops by address, falling back to
     * comparing the text, about 20 times an event (3.5k instructions a wait). */
    PyObject *canon = NULL;
    if (PyUnicode_CheckExact(op) && !PyUnicode_CHECK_INTERNED(op)) {
        canon = Py_NewRef(op);
        PyUnicode_InternInPlace(&canon);
        op = canon;
    }
    sf_busy++;
    int rc = sf_filter(st, buf, full, op, obj, site_obj, task, extra, ts);
    if (rc == 0 && sf_nlives > 0) {
        sf_life_passed(st);
        SfLife *named = obj != st && obj != task ? sf_life_get(obj) : NULL;
        if (named != NULL)  /* (it names a thread or job: that one may be shown) */
            named->cited = 1;
        int i = sf_actor_find(task != NULL && task != Py_None ? task : st);
        if (i >= 0 && sf_seg_release(sf_actors[i], buf) < 0)
            rc = -1;
    }
    sf_busy--;
    if (sf_busy == 0 && sf_clear_pending && rc >= 0) {  /* tables a stop or start left */
        sf_clear_pending = 0;
        PyObject *drop = sf_clear_tables();
        Py_XDECREF(drop);
        if (drop == NULL)
            PyErr_Clear();
    }
    while (sf_puts > 0) {  /* (may run Python code, let other threads run) */
        sf_puts--;
        counted();
    }
    if (sf_due() && !sf_wake_sent && waker != NULL && rc >= 0) {
        /* the tables are filling: have the writer take them now (summary_take
         * empties them) rather than at its next records, up to 10 s away; past
         * three quarters, events go through uncounted */
        sf_wake_sent = 1;
        PyObject *r = PyObject_CallNoArgs(waker);
        if (r == NULL)
            PyErr_Clear();
        else
            Py_DECREF(r);
    }
    Py_XDECREF(canon);
    return rc;
}

/* ------------------------------------------------------------ Python side */

/* Drop every table (references are dropped after the tables are empty). */
static PyObject *
sf_clear_tables(void)
{
    PyObject *drop = PyList_New(0);
    if (drop == NULL)
        return NULL;
    sf_gen++;  /* (the classes go: what Refs remember of theirs is stale) */
    sf_actor_last = NULL;
    for (int i = 0; i < SF_ACTOR_SLOTS; i++) {
        SfActor *a = sf_actors[i];
        if (a == NULL)
            continue;
        sf_actors[i] = NULL;
        for (int k = 0; k < a->n; k++)
            if (PyList_Append(drop, a->held[k].obj) == 0)
                Py_DECREF(a->held[k].obj);
        if (PyList_Append(drop, a->key) == 0)
            Py_DECREF(a->key);
        PyObject *lw[3] = {a->lw_obj, a->lw_site, a->lw_by};
        for (int k = 0; k < 3; k++)
            if (lw[k] != NULL && PyList_Append(drop, lw[k]) == 0)
                Py_DECREF(lw[k]);
        PyMem_Free(a->held);
        PyMem_Free(a);
    }
    sf_nactors = 0;
    sf_nlw = 0;
    for (int i = 0; i < SF_LIFE_SLOTS; i++) {
        SfLife *l = sf_lives[i];
        if (l == NULL)
            continue;
        sf_lives[i] = NULL;
        for (int k = 0; k < l->nev; k++) {
            SfLifeEv *e = &l->ev[k];
            PyObject *parts[6] = {e->by, e->op, e->obj, e->site, e->task, e->extra};
            for (int j = 0; j < 6; j++)
                if (parts[j] != NULL && PyList_Append(drop, parts[j]) == 0)
                    Py_DECREF(parts[j]);
        }
        if (PyList_Append(drop, l->key) == 0)
            Py_DECREF(l->key);
        PyMem_Free(l);
    }
    sf_nlives = 0;
    sf_gone_first = sf_ngone = 0;
    SF_EACH_USED(i, &sf_class_used, SF_CLASS_SLOTS) {
        SfClass *c = &sf_classes[i];
        if (c->cls == 0)
            continue;
        if (PyList_Append(drop, c->obj) == 0)
            Py_DECREF(c->obj);
        PyMem_Free(c->members);
        PyMem_Free(c->ord);
        memset(c, 0, sizeof(*c));
    }
    memset(&sf_class_used, 0, sizeof(sf_class_used));
    sf_nclasses = 0;
    for (int i = 0; sf_ndeps > 0 && i < SF_DEP_SLOTS; i++) {
        SfDep *d = &sf_deps[i];
        if (d->h == 0)
            continue;
        for (int k = 0; k < d->depth; k++)
            if (PyList_Append(drop, d->held[k].obj) == 0)
                Py_DECREF(d->held[k].obj);
        if (PyList_Append(drop, d->obj) == 0)
            Py_DECREF(d->obj);
        PyMem_Free(d->held);
        memset(d, 0, sizeof(*d));
    }
    sf_ndeps = 0;
    SF_EACH_USED(i, &sf_lock_used, SF_LOCK_SLOTS) {
        SfLock *l = &sf_locks[i];
        for (int k = 0; k < l->npermits; k++) {
            if (PyList_Append(drop, l->permits[k].by) == 0)
                Py_DECREF(l->permits[k].by);
            if (PyList_Append(drop, l->permits[k].task) == 0)
                Py_DECREF(l->permits[k].task);
        }
        PyMem_Free(l->permits);
        l->permits = NULL;
        l->npermits = 0;
        if (l->obj != NULL && PyList_Append(drop, l->obj) == 0)
            Py_DECREF(l->obj);
        l->obj = NULL;
    }
    if (sf_spill != NULL && PyList_Append(drop, sf_spill) == 0)
        Py_CLEAR(sf_spill);
    memset(&sf_lock_used, 0, sizeof(sf_lock_used));
    sf_nlocks = 0;
    sf_kept = 0;
    if (sf_nkinds > 0)
        memset(sf_kinds, 0, sizeof(sf_kinds));
    sf_nkinds = 0;
    sf_resent = 0;
    return drop;
}

/* summary_start(threshold_ns) / summary_start(None): turn the filter on (empty
 * tables) or off. */
static PyObject *
summary_start(PyObject *mod, PyObject *args)
{
    PyObject *arg;
    int per_class = sf_instances_per_class;
    if (!PyArg_ParseTuple(args, "O|i", &arg, &per_class))
        return NULL;
    long long threshold = -1;
    if (arg != Py_None) {
        threshold = PyLong_AsLongLong(arg);
        if (threshold == -1 && PyErr_Occurred())
            return NULL;
    }
    sf_on = 0;
    PyObject *drop = NULL;
    if (sf_busy) {  /* a thread is inside the filter: empty the tables once it is out */
        sf_clear_pending = 1;
    }
    else if ((drop = sf_clear_tables()) == NULL) {
        return NULL;
    }
    if (threshold >= 0) {
        sf_threshold = threshold;
        sf_instances_per_class = per_class;
        sf_on = 1;
    }
    Py_XDECREF(drop);
    Py_RETURN_NONE;
}

/* The dependency counts since the last take, as
 * [(((held lock, site), ...), lock, site, n, first, last, by_class)], zeroed
 * (by_class: a dependency of lock classes, named by its first instances). */
static PyObject *
sf_take_deps(void)
{
    PyObject *out = PyList_New(0);
    if (out == NULL)
        return NULL;
    for (int i = 0; i < SF_DEP_SLOTS; i++) {
        SfDep *d = &sf_deps[i];
        if (d->h == 0 || d->n == 0)
            continue;
        PyObject *held = PyTuple_New(d->depth);
        if (held == NULL)
            goto error;
        for (int k = 0; k < d->depth; k++) {
            PyObject *pair = Py_BuildValue("(OL)", d->held[k].obj, d->held[k].site);
            if (pair == NULL) {
                Py_DECREF(held);
                goto error;
            }
            PyTuple_SET_ITEM(held, k, pair);
        }
        PyObject *row = Py_BuildValue("(NOLLLLO)", held, d->obj, d->site, d->n, d->first,
                                      d->last, d->by_class ? Py_True : Py_False);
        if (row == NULL || PyList_Append(out, row) < 0) {
            Py_XDECREF(row);
            goto error;
        }
        Py_DECREF(row);
        d->n = 0;
    }
    return out;
error:
    Py_DECREF(out);
    return NULL;
}

/* [[bucket, count], ...] of the non-zero buckets b (new list), or NULL. */
static PyObject *
sf_buckets(const uint32_t *b)
{
    PyObject *out = PyList_New(0);
    for (int k = 0; out != NULL && k < SF_BUCKETS; k++) {
        if (!b[k])
            continue;
        PyObject *pair = Py_BuildValue("[iI]", k, b[k]);
        if (pair == NULL || PyList_Append(out, pair) < 0)
            Py_CLEAR(out);
        Py_XDECREF(pair);
    }
    return out;
}

/* Append the row (obj, n, sum_ns, max_ns, [[bucket, count], ...], fails,
 * by_class, waits, wait sum_ns, wait max_ns, wait buckets) of `h` to out, and
 * zero it (none when it is zero).  0, or -1. */
static int
sf_take_hist(PyObject *out, PyObject *obj, SfHist *h, int by_class)
{
    if (h->hold.n == 0 && h->fails == 0 && h->wait.n == 0)
        return 0;
    PyObject *buckets = sf_buckets(h->hold.b), *wbuckets = buckets ? sf_buckets(h->wait.b) : NULL;
    if (wbuckets == NULL) {
        Py_XDECREF(buckets);
        return -1;
    }
    PyObject *row = Py_BuildValue("(OLLLNLOLLLN)", obj, h->hold.n, h->hold.sum, h->hold.max,
                                  buckets, h->fails, by_class ? Py_True : Py_False,
                                  h->wait.n, h->wait.sum, h->wait.max, wbuckets);
    if (row == NULL || PyList_Append(out, row) < 0) {
        Py_XDECREF(row);
        return -1;
    }
    Py_DECREF(row);
    memset(h, 0, sizeof(*h));
    return 0;
}

/* The hold histograms since the last take, as rows (see sf_take_hist) of locks
 * and of classes of locks, zeroed; locks that no actor's stack holds are
 * forgotten. */
static PyObject *
sf_take_locks(PyObject *drop)
{
    PyObject *out = PyList_New(0);
    if (out == NULL)
        return NULL;
    SF_EACH_USED(i, &sf_lock_used, SF_LOCK_SLOTS) {
        SfLock *l = &sf_locks[i];
        if (l->obj != NULL && sf_take_hist(out, l->obj, &l->h, 0) < 0)
            goto error;
    }
    SF_EACH_USED(i, &sf_class_used, SF_CLASS_SLOTS) {
        SfClass *c = &sf_classes[i];
        if (c->cls != 0 && sf_take_hist(out, c->obj, &c->h, 1) < 0)
            goto error;
    }
    /* Rebuild the table with the locks that are in a stack (the others
     * are let go: a lock made per request is not kept alive by this table). */
    static SfLock keep[SF_LOCK_SLOTS];
    int nkeep = 0;
    SF_EACH_USED(i, &sf_lock_used, SF_LOCK_SLOTS) {
        SfLock *l = &sf_locks[i];
        if (l->obj == NULL)
            continue;
        if (l->holds > 0 || l->open_waits > 0 || l->npermits > 0 || l->py_permits > 0) {
            keep[nkeep++] = *l;
        }
        else {
            PyMem_Free(l->permits);
            if (PyList_Append(drop, l->obj) == 0)
                Py_DECREF(l->obj);
        }
        memset(l, 0, sizeof(*l));  /* (its permits, if kept, are keep's now) */
    }
    memset(&sf_lock_used, 0, sizeof(sf_lock_used));
    sf_nlocks = 0;
    sf_kept = nkeep;
    for (int k = 0; k < nkeep; k++) {
        unsigned i = (unsigned)sf_ptr_hash(keep[k].obj) & (SF_LOCK_SLOTS - 1);
        while (sf_locks[i].obj != NULL)
            i = (i + 1) & (SF_LOCK_SLOTS - 1);
        sf_locks[i] = keep[k];
        sf_used_mark(&sf_lock_used, i);
        sf_nlocks++;
    }
    return out;
error:
    Py_DECREF(out);
    return NULL;
}

/* summary_stats() -> (classes_read, member_scans, slots_freed): see the counters. */
static PyObject *
summary_stats(PyObject *mod, PyObject *Py_UNUSED(ignored))
{
    return Py_BuildValue("(LLL)", sf_n_classes_read, sf_n_member_scans, sf_n_slots_freed);
}

/* summary_due() -> whether the filter's tables should be taken (summary_take) at
 * the writer's next drain (see sf_due). */
static PyObject *
summary_due(PyObject *mod, PyObject *Py_UNUSED(ignored))
{
    /* (and once the filter woke the writer, until the take: the lock table may
     * have dropped back below the mark meanwhile, its idle slots freed, and a
     * wake not answered by a take was never sent again) */
    return PyBool_FromLong(sf_on && (sf_due() || sf_wake_sent));
}

/* summary_take(final) -> (deps, holds, resent): what the filter counted since the
 * last take (see sf_take_deps, sf_take_locks), and how many counted acquires were
 * re-sent.  When the dependency table is three quarters full it starts again
 * empty; `final` turns the filter off and empties every table. */
static PyObject *
summary_take(PyObject *mod, PyObject *arg)
{
    int final = PyObject_IsTrue(arg);
    if (final < 0)
        return NULL;
    PyObject *drop = PyList_New(0);
    if (drop == NULL)
        return NULL;
    sf_wake_sent = 0;
    PyObject *deps = sf_take_deps();
    PyObject *holds = deps ? sf_take_locks(drop) : NULL;
    PyObject *res = NULL;
    if (holds != NULL) {
        res = Py_BuildValue("(OOL)", deps, holds, sf_resent);
        sf_resent = 0;
    }
    Py_XDECREF(deps);
    Py_XDECREF(holds);
    if (sf_nkinds >= SF_KIND_FILL - SF_KIND_SLOTS / 8) {  /* kinds: start again */
        memset(sf_kinds, 0, sizeof(sf_kinds));
        sf_nkinds = 0;
    }
    if (res != NULL && final && sf_busy) {  /* (see summary_start) */
        sf_on = 0;
        sf_clear_pending = 1;
    }
    else if (res != NULL && (final || sf_ndeps >= SF_DEP_FILL - SF_DEP_SLOTS / 8)) {
        if (final)
            sf_on = 0;
        PyObject *more = NULL;
        if (final) {
            more = sf_clear_tables();
        }
        else {  /* the dependencies only */
            more = PyList_New(0);
            for (int i = 0; more != NULL && i < SF_DEP_SLOTS; i++) {
                SfDep *d = &sf_deps[i];
                if (d->h == 0)
                    continue;
                for (int k = 0; k < d->depth; k++)
                    if (PyList_Append(more, d->held[k].obj) == 0)
                        Py_DECREF(d->held[k].obj);
                if (PyList_Append(more, d->obj) == 0)
                    Py_DECREF(d->obj);
                PyMem_Free(d->held);
                memset(d, 0, sizeof(*d));
            }
            sf_ndeps = 0;
        }
        Py_XDECREF(more);
    }
    Py_DECREF(drop);
    return res;
}

/* summary_shown(x) -> [(state, event)] or None: the Summary shows x (a thread's
 * state, or anything else it shows): the lifecycle events of x held back here,
 * in the order recorded, handed over and forgotten. */
static PyObject *
summary_shown(PyObject *mod, PyObject *x)
{
    int i = sf_nlives > 0 ? sf_slot_find((void **)sf_lives, SF_LIFE_SLOTS, x) : -1;
    if (i < 0)
        Py_RETURN_NONE;
    SfLife *l = sf_lives[i];
    PyObject *out = PyList_New(l->nev);
    if (out == NULL)
        return NULL;
    for (int k = 0; k < l->nev; k++) {
        PyObject *ev = sf_life_ev(&l->ev[k]);
        PyObject *pair = ev != NULL ? PyTuple_Pack(2, l->ev[k].by, ev) : NULL;
        Py_XDECREF(ev);
        if (pair == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, k, pair);
    }
    sf_life_free(sf_life_unlink(i));
    return out;
}

/* summary_first(obj, key, waiter) -> int: how many of the first signals
 * (waiter false) or waits (waiter true) on resource obj that the filter let
 * through to order others by (see SfOrd) the actor `key` (a thread state, or a
 * task) made; the Summary writes those, that actor's first ones on obj. */
static PyObject *
summary_first(PyObject *mod, PyObject *args)
{
    PyObject *obj, *key;
    int waiter;
    if (!PyArg_ParseTuple(args, "OOp", &obj, &key, &waiter))
        return NULL;
    SfLock *r = sf_on ? sf_lock(obj, 1) : NULL;
    SfOrd *o = r != NULL ? sf_ord(obj, r) : NULL;
    long n = 0;
    if (o != NULL) {
        PyObject **keys = waiter ? o->waiters : o->signallers;
        int made = waiter ? o->nwait : o->nsig;
        for (int k = 0; k < made && k < SF_ORD_PER_RESOURCE; k++)
            n += keys[k] == key;
    }
    return PyLong_FromLong(n);
}

/* summary_waits(now_ns, final): the lock waits held back here that are open
 * for the threshold or longer at now_ns (every one when final) go, with the
 * held sets they are judged with, into their threads' buffers, after what each
 * recorded before (the writer calls it just before it takes the buffers). */
static PyObject *
summary_waits(PyObject *mod, PyObject *args)
{
    long long now;
    int final;
    if (!PyArg_ParseTuple(args, "Lp", &now, &final))
        return NULL;
    for (int i = 0; sf_nlw > 0 && i < SF_ACTOR_SLOTS; i++) {
        SfActor *a = sf_actors[i];
        if (a == NULL || a->lw_obj == NULL || !(final || now - a->lw_ts >= sf_threshold))
            continue;
        PyObject *buf = Py_TYPE(a->lw_by) == state_type && off_buf >= 0
            ? state_buffer(a->lw_by) : NULL;  /* (made now if it has none yet) */
        if (buf == NULL)
            PyErr_Clear();
        int rc = sf_lw_put(a, buf);
        Py_XDECREF(buf);
        if (rc < 0)
            return NULL;
    }
    while (sf_puts > 0) {
        sf_puts--;
        counted();
    }
    Py_RETURN_NONE;
}

/* summary_spilled() -> [(state, event)] or None: acquires of permits the filter
 * counted that the Summary must see before the events taken since (a wait on
 * their semaphore, a long hold). */
static PyObject *
summary_spilled(PyObject *mod, PyObject *Py_UNUSED(ignored))
{
    PyObject *out = sf_spill;
    sf_spill = NULL;
    if (out == NULL)
        Py_RETURN_NONE;
    return out;
}

/* In a forked child only the forking thread is left: none is inside the filter. */
static void
sf_after_fork_child(void)
{
    sf_busy = 0;
}

static int
sf_init(void)
{
#if defined(__unix__) || defined(__APPLE__)
    pthread_atfork(NULL, NULL, sf_after_fork_child);
#endif
#define intern PyUnicode_InternFromString
    if (!(sf_counted = PyDict_New()) || !(sf_op_pass = intern("pass"))
        || !(sf_op_suspend = intern("suspend")) || !(sf_op_resume = intern("resume"))
        || !(sf_op_end = intern("end")) || !(sf_op_wait = intern("wait"))
        || !(sf_op_start = intern("start")) || !(sf_op_join = intern("join"))
        || !(sf_op_name = intern("name")) || !(sf_op_seg_begin = intern("segment-begin"))
        || !(sf_op_seg_end = intern("segment-end")) || !(sf_op_resync = intern("resync"))
        || !(sf_op_dropped = intern("dropped")) || !(sf_op_timeout = intern("timeout"))
        || !(sf_op_cancel = intern("cancel")) || !(sf_op_try_fail = intern("try-fail")) || !(sf_s_semaphore = intern("Semaphore"))
        || !(sf_s_aio_lock = intern("asyncio.Lock"))
        || !(sf_op_signal = intern("signal")) || !(sf_op_wait_begin = intern("wait-begin"))
        || !(sf_op_wait_end = intern("wait-end")) || !(sf_s_sig = intern("sig"))
        || !(sf_s_submit = intern("submit")) || !(sf_s_ls_def = intern("_ls_def"))
        || !(sf_s_ls_id = intern("_ls_id")) || !(sf_s_site = intern("site"))
        || !(sf_s_type = intern("type")) || !(sf_s_value = intern("value")))
        return -1;
#undef intern
    return 0;
}
