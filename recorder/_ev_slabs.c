/* Memory for events (Ev) in slabs of their own, not in pymalloc's pools.
 *
 * Events are made a few hundred thousand a second by the recording threads and
 * freed by the writer a drain later, so between two drains up to a drain's worth
 * of them is alive at once.  Made by pymalloc, they shared its 80-byte pools with
 * the program's own objects of that size (a Future, a bound method, a Condition's
 * parts): each drain left those pools full of holes that the program's next
 * objects filled in whatever order they came, so a program's objects made one
 * after the other lay scattered, and the cyclic GC's walk over them (a linked
 * list, one cache miss an object) ran twice as long: 30,000 pending Futures of a
 * ThreadPoolExecutor, 92 ms a full collection against 42 ms bare, 38-40 ms with
 * events in slabs of their own.  glibc's malloc kept them apart too, but cost a
 * tenth of the whole program's time in its consolidation; slabs from
 * posix_memalign left glibc's heap in aligned holes it could not reuse (4 threads
 * logging: 2 MB in use, the heap 34 MB and growing).  (Freed events were kept in
 * a pool for the next ones, as pymalloc's allocation and release were a third of
 * an event's own cost: a slab's free list is that pool now.)
 *
 * A slab is EV_SLAB_BYTES mapped from the system, aligned to its size (a slot
 * finds its slab by masking its address): a header, then slots.  Slabs with a
 * free slot are on a doubly linked list.  A slab whose slots are all free is kept
 * for the next events while the slabs in use and kept are no more than the most
 * in use at once over the last two drain intervals (ev_slabs_drained), else
 * given back to the system: a program's steady traffic maps nothing, a burst's
 * memory goes back after it.  The GIL guards it all. */

#include <stdint.h>
#ifdef MS_WINDOWS
#include <malloc.h>
#else
#include <sys/mman.h>
#endif

#define EV_SLAB_BYTES ((size_t)64 * 1024)

typedef struct EvSlab {
    struct EvSlab *prev, *next;  /* on ev_slabs_open (not full) or ev_slabs_empty */
    void *free;                  /* freed slots, linked through their first word */
    char *fresh;                 /* the first slot never used yet */
    int used;
} EvSlab;

#define EV_SLOT_SIZE ((sizeof(Ev) + 15) & ~(size_t)15)
#define EV_FIRST_SLOT ((sizeof(EvSlab) + 15) & ~(size_t)15)
#define EV_SLAB_END(s) ((char *)(s) + EV_SLAB_BYTES - EV_SLOT_SIZE)
#define EV_SLAB_FULL(s) ((s)->free == NULL && (s)->fresh > EV_SLAB_END(s))

static EvSlab *ev_slabs_open;    /* slabs with a free slot, the newest open first */
static EvSlab *ev_slabs_empty;   /* slabs kept with no slot in use (via next) */
static Py_ssize_t ev_slabs_in_use, ev_slabs_kept;
static Py_ssize_t ev_slabs_peak, ev_slabs_peak_before;  /* in use at once: this interval, the one before */
static Py_ssize_t ev_slots_used;  /* (for the tests: ev_slabs()) */

static EvSlab *
ev_slab_map(void)
{
#ifdef MS_WINDOWS
    return _aligned_malloc(EV_SLAB_BYTES, EV_SLAB_BYTES);
#else
    /* twice the size, then the parts before and after an aligned slab unmapped */
    char *m = mmap(NULL, 2 * EV_SLAB_BYTES, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    char *s = (char *)(((uintptr_t)m + EV_SLAB_BYTES - 1) & ~(uintptr_t)(EV_SLAB_BYTES - 1));
    if (s > m)
        munmap(m, (size_t)(s - m));
    if (s + EV_SLAB_BYTES < m + 2 * EV_SLAB_BYTES)
        munmap(s + EV_SLAB_BYTES, (size_t)(m + 2 * EV_SLAB_BYTES - (s + EV_SLAB_BYTES)));
    return (EvSlab *)s;
#endif
}

static void
ev_slab_unmap(EvSlab *s)
{
#ifdef MS_WINDOWS
    _aligned_free(s);
#else
    munmap(s, EV_SLAB_BYTES);
#endif
}

static void
ev_slab_link(EvSlab *s)
{
    s->prev = NULL;
    s->next = ev_slabs_open;
    if (ev_slabs_open != NULL)
        ev_slabs_open->prev = s;
    ev_slabs_open = s;
}

static void
ev_slab_unlink(EvSlab *s)
{
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        ev_slabs_open = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
}

/* Room for one Ev (not initialised), or NULL (no memory: no error set). */
static void *
ev_slab_alloc(void)
{
    EvSlab *s = ev_slabs_open;
    if (s == NULL) {
        s = ev_slabs_empty;
        if (s != NULL) {
            ev_slabs_empty = s->next;
            ev_slabs_kept--;
        }
        else if ((s = ev_slab_map()) == NULL)
            return NULL;
        s->free = NULL;
        s->fresh = (char *)s + EV_FIRST_SLOT;
        s->used = 0;
        ev_slab_link(s);
        if (++ev_slabs_in_use > ev_slabs_peak)
            ev_slabs_peak = ev_slabs_in_use;
    }
    void *slot = s->free;
    if (slot != NULL)
        s->free = *(void **)slot;
    else {
        slot = s->fresh;
        s->fresh += EV_SLOT_SIZE;
    }
    s->used++;
    ev_slots_used++;
    if (EV_SLAB_FULL(s))
        ev_slab_unlink(s);
    return slot;
}

static inline Py_ssize_t
ev_slabs_wanted(void)
{
    Py_ssize_t peak = ev_slabs_peak > ev_slabs_peak_before ? ev_slabs_peak : ev_slabs_peak_before;
    return peak > 1 ? peak : 1;
}

static void
ev_slab_free(void *slot)
{
    EvSlab *s = (EvSlab *)((uintptr_t)slot & ~(uintptr_t)(EV_SLAB_BYTES - 1));
    int was_open = !EV_SLAB_FULL(s);
    *(void **)slot = s->free;
    s->free = slot;
    ev_slots_used--;
    if (--s->used == 0) {
        if (was_open)
            ev_slab_unlink(s);
        ev_slabs_in_use--;
        if (ev_slabs_in_use + ev_slabs_kept < ev_slabs_wanted()) {
            s->next = ev_slabs_empty;
            ev_slabs_empty = s;
            ev_slabs_kept++;
        }
        else
            ev_slab_unmap(s);
    }
    else if (!was_open)
        ev_slab_link(s);
}

/* The writer drains: what the slabs keep for the next interval. */
static void
ev_slabs_drained(void)
{
    ev_slabs_peak_before = ev_slabs_peak;
    ev_slabs_peak = ev_slabs_in_use;
    Py_ssize_t want = ev_slabs_wanted();
    while (ev_slabs_empty != NULL && ev_slabs_in_use + ev_slabs_kept > want) {
        EvSlab *s = ev_slabs_empty;
        ev_slabs_empty = s->next;
        ev_slabs_kept--;
        ev_slab_unmap(s);
    }
}
