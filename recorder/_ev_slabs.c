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
 * ThreadPoolExecutor, 92 ms a full collection against 42 ms bare, 53 ms with
 * events in slabs of their own.  glibc's malloc kept them apart too, but cost a
 * tenth of the whole program's time in its consolidation.  (Freed events were
 * kept in a pool for the next ones, as pymalloc's allocation and release were a
 * third of an event's own cost: a slab's free list is that pool now, and gives
 * its memory back.)
 *
 * A slab is EV_SLAB_BYTES, aligned to its size (a slot finds its slab by masking
 * its address), a header and then slots.  Slabs with a free slot are on a doubly
 * linked list; a slab whose slots are all free goes back to the system, but for
 * one kept as the spare.  The GIL guards it all. */

#include <stdint.h>
#include <stdlib.h>

#define EV_SLAB_BYTES (64 * 1024)

typedef struct EvSlab {
    struct EvSlab *prev, *next;  /* on ev_slabs_open while it has a free slot */
    void *free;                  /* freed slots, linked through their first word */
    char *fresh;                 /* the first slot never used yet */
    int used;
    int open;                    /* on the list */
} EvSlab;

#define EV_SLOT_SIZE ((sizeof(Ev) + 15) & ~(size_t)15)
#define EV_FIRST_SLOT ((sizeof(EvSlab) + 15) & ~(size_t)15)
#define EV_SLAB_END(s) ((char *)(s) + EV_SLAB_BYTES - EV_SLOT_SIZE)

static EvSlab *ev_slabs_open;    /* slabs with a free slot, the newest open first */
static EvSlab *ev_slab_spare;    /* an empty slab kept */
static Py_ssize_t ev_slabs_count, ev_slots_used;  /* (for the tests: ev_slabs()) */

static void
ev_slab_link(EvSlab *s)
{
    s->prev = NULL;
    s->next = ev_slabs_open;
    if (ev_slabs_open != NULL)
        ev_slabs_open->prev = s;
    ev_slabs_open = s;
    s->open = 1;
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
    s->open = 0;
}

/* Room for one Ev (not initialised), or NULL (no memory: no error set). */
static void *
ev_slab_alloc(void)
{
    EvSlab *s = ev_slabs_open;
    if (s == NULL) {
        s = ev_slab_spare;
        ev_slab_spare = NULL;
        if (s == NULL) {
            void *mem = NULL;
            if (posix_memalign(&mem, EV_SLAB_BYTES, EV_SLAB_BYTES) != 0)
                return NULL;
            s = mem;
            ev_slabs_count++;
        }
        s->free = NULL;
        s->fresh = (char *)s + EV_FIRST_SLOT;
        s->used = 0;
        ev_slab_link(s);
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
    if (s->free == NULL && s->fresh > EV_SLAB_END(s))
        ev_slab_unlink(s);  /* (full) */
    return slot;
}

static void
ev_slab_free(void *slot)
{
    EvSlab *s = (EvSlab *)((uintptr_t)slot & ~(uintptr_t)(EV_SLAB_BYTES - 1));
    *(void **)slot = s->free;
    s->free = slot;
    ev_slots_used--;
    if (--s->used == 0) {
        if (s->open)
            ev_slab_unlink(s);
        if (ev_slab_spare == NULL)
            ev_slab_spare = s;
        else {
            free(s);
            ev_slabs_count--;
        }
    }
    else if (!s->open)
        ev_slab_link(s);
}
