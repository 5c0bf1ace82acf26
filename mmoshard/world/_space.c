/* The C interest space: positions, cells, visible sets, move and combat records in arrays (IInterestSpace; PySpace is the reference). */

/*
 * Every entity gets a slot: an index into arrays of positions, cells, move
 * records and, for observers, a sorted array of the slots they see.  A tick
 * then touches no Python object except to read a moved entity's fields and
 * to build each observer's update: the moves-only update (the common case,
 * once per player per tick) is encoded here, msgpack head included, and so
 * is one that also carries combat records (the c field).
 *
 * The semantics are PySpace's, line for line: the same cells (Python's
 * float floor division), the same distance tests in the same order of
 * operations, the same enter/leave bookkeeping.  The contract tests and a
 * randomised comparison with PySpace run against both.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include "_native.h"
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define ALWAYS_INLINE inline
#endif

#define REC 20          /* one move record: <IffhhI */
#define PREFIX_LEN 13   /* msgpack {"t": "world.u", "m": up to the bin header */
static const unsigned char PREFIX[PREFIX_LEN] = {
    0x82, 0xa1, 't', 0xa7, 'w', 'o', 'r', 'l', 'd', '.', 'u', 0xa1, 'm'};
/* PREFIX[TYPE_AT:TYPE_AT + TYPE_LEN] is "t": "world.u" (after the map head). */
#define TYPE_AT 1
#define TYPE_LEN 10

typedef struct {
    int32_t *a;
    int32_t n, cap;
} IVec;

static int
ivec_reserve(IVec *v, int32_t need)
{
    if (need <= v->cap)
        return 0;
    int32_t cap = v->cap ? v->cap : 8;
    while (cap < need) {
        if (cap > INT32_MAX / 2) {
            PyErr_NoMemory();
            return -1;
        }
        cap *= 2;
    }
    int32_t *a = PyMem_Realloc(v->a, (size_t)cap * sizeof(int32_t));
    if (a == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    v->a = a;
    v->cap = cap;
    return 0;
}

static inline int
ivec_push(IVec *v, int32_t x)
{
    if (v->n == v->cap && ivec_reserve(v, v->n + 1) < 0)
        return -1;
    v->a[v->n++] = x;
    return 0;
}

/* A growable byte buffer: one entity's combat records of the tick. */
typedef struct {
    unsigned char *a;
    Py_ssize_t n, cap;
} BVec;

static int
bvec_append(BVec *v, const char *p, Py_ssize_t n)
{
    if (n > PY_SSIZE_T_MAX / 2 - v->n) {
        PyErr_NoMemory();
        return -1;
    }
    if (v->n + n > v->cap) {
        Py_ssize_t cap = v->cap ? v->cap : 64;
        while (cap < v->n + n)
            cap *= 2;
        unsigned char *a = PyMem_Realloc(v->a, (size_t)cap);
        if (a == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        v->a = a;
        v->cap = cap;
    }
    memcpy(v->a + v->n, p, (size_t)n);
    v->n += n;
    return 0;
}

static void
bvec_free(BVec *v)
{
    PyMem_Free(v->a);
    v->a = NULL;
    v->n = v->cap = 0;
}

static void
ivec_free(IVec *v)
{
    PyMem_Free(v->a);
    v->a = NULL;
    v->n = v->cap = 0;
}

/* Remove the first x from an unsorted vector; 1 when found. */
static int
ivec_discard(IVec *v, int32_t x)
{
    for (int32_t i = 0; i < v->n; i++) {
        if (v->a[i] == x) {
            memmove(v->a + i, v->a + i + 1, (size_t)(v->n - i - 1) * sizeof(int32_t));
            v->n--;
            return 1;
        }
    }
    return 0;
}

static int
ivec_contains(const IVec *v, int32_t x)
{
    for (int32_t i = 0; i < v->n; i++)
        if (v->a[i] == x)
            return 1;
    return 0;
}

/* Index of x in a sorted vector, or -1. */
static int32_t
sorted_find(const IVec *v, int32_t x)
{
    int32_t lo = 0, hi = v->n;
    while (lo < hi) {
        int32_t mid = lo + (hi - lo) / 2;
        if (v->a[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (lo < v->n && v->a[lo] == x) ? lo : -1;
}

static int
cmp_slots(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static void
sort_slots(int32_t *a, int32_t n)
{
    /* A crowd (a town square) would make insertion sort quadratic per observer. */
    if (n > 64) {
        qsort(a, (size_t)n, sizeof(int32_t), cmp_slots);
        return;
    }
    /* Insertion sort: an observer sees a few dozen entities. */
    for (int32_t i = 1; i < n; i++) {
        int32_t x = a[i], j = i - 1;
        while (j >= 0 && a[j] > x) {
            a[j + 1] = a[j];
            j--;
        }
        a[j + 1] = x;
    }
}

typedef struct {
    PyObject_HEAD
    double size, radius, r2, o2;
    int32_t cols, rows, ncells;
    int32_t *nb;        /* 9 neighbour cells per cell, -1 after the last */
    IVec *cells;        /* slots per cell */
    /* per slot */
    int32_t cap, top;
    double *x, *z;
    int32_t *cell, *cellpos, *obspos, *stamp;
    uint32_t *eid;
    uint8_t *alive, *moved;
    unsigned char *rec;
    PyObject **entity, **session;
    IVec *vis, *enters, *leaves;    /* leaves hold ids, the rest slots */
    BVec *ev;           /* combat records of the tick, in the order emitted */
    /* shared */
    IVec freelist, movedList, observers, inner, next, entered, left;
    IVec evList;        /* the slots with records this tick (ev[s].n > 0) */
    int32_t curStamp;
} Space;

static PyObject *s_slot, *s_id, *s_x, *s_z, *s_vx, *s_vz, *s_ct, *s_session;

#define GROW(field, type)                                                     \
    do {                                                                      \
        type *p = PyMem_Realloc(self->field, (size_t)cap * sizeof(type));     \
        if (p == NULL)                                                        \
            goto nomem;                                                       \
        memset(p + self->cap, 0, (size_t)(cap - self->cap) * sizeof(type));   \
        self->field = p;                                                      \
    } while (0)

static int
space_grow(Space *self)
{
    if (self->cap > INT32_MAX / 2)
        goto nomem;
    int32_t cap = self->cap ? self->cap * 2 : 256;
    GROW(x, double);
    GROW(z, double);
    GROW(cell, int32_t);
    GROW(cellpos, int32_t);
    GROW(obspos, int32_t);
    GROW(stamp, int32_t);
    GROW(eid, uint32_t);
    GROW(alive, uint8_t);
    GROW(moved, uint8_t);
    {
        unsigned char *p = PyMem_Realloc(self->rec, (size_t)cap * REC);
        if (p == NULL)
            goto nomem;
        self->rec = p;
    }
    GROW(entity, PyObject *);
    GROW(session, PyObject *);
    GROW(vis, IVec);
    GROW(enters, IVec);
    GROW(leaves, IVec);
    GROW(ev, BVec);
    self->cap = cap;
    return 0;
nomem:
    PyErr_NoMemory();
    return -1;
}

/* Python's float floor division (floatobject.c), so cells match PySpace's. */
static double
py_floordiv(double vx, double wx)
{
    double mod = fmod(vx, wx);
    double div = (vx - mod) / wx;
    if (mod) {
        if ((wx < 0) != (mod < 0))
            div -= 1.0;
    }
    double floordiv;
    if (div) {
        floordiv = floor(div);
        if (div - floordiv > 0.5)
            floordiv += 1.0;
    }
    else {
        floordiv = copysign(0.0, vx / wx);
    }
    return floordiv;
}

static int32_t
cell_of(Space *self, double x, double z)
{
    double i = py_floordiv(x, self->size), j = py_floordiv(z, self->size);
    int32_t ci, cj;
    if (!(i >= 0.0))
        ci = 0;
    else if (i >= (double)self->cols)
        ci = self->cols - 1;
    else
        ci = (int32_t)i;
    if (!(j >= 0.0))
        cj = 0;
    else if (j >= (double)self->rows)
        cj = self->rows - 1;
    else
        cj = (int32_t)j;
    return cj * self->cols + ci;
}

static int
cell_add(Space *self, int32_t slot, int32_t c)
{
    IVec *cv = &self->cells[c];
    if (ivec_push(cv, slot) < 0)
        return -1;
    self->cell[slot] = c;
    self->cellpos[slot] = cv->n - 1;
    return 0;
}

static void
cell_remove(Space *self, int32_t slot)
{
    IVec *cv = &self->cells[self->cell[slot]];
    int32_t pos = self->cellpos[slot], last = cv->a[--cv->n];
    if (pos < cv->n) {
        cv->a[pos] = last;
        self->cellpos[last] = pos;
    }
    self->cell[slot] = -1;
}

static inline void
put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static inline void
put_f32(unsigned char *p, double d)
{
    float f = (float)d;
    uint32_t u;
    memcpy(&u, &f, 4);
    put_u32(p, u);
}

static inline void
put_i16(unsigned char *p, double v)
{
    /* int(v * 100.0), clamped to int16 as PySpace's packMove does. */
    double t = v * 100.0;
    int32_t i;
    if (t != t)
        i = 0;
    else if (t >= 32767.0)
        i = 32767;
    else if (t <= -32768.0)
        i = -32768;
    else
        i = (int32_t)t; /* truncation toward zero, as int() */
    uint16_t u = (uint16_t)(int16_t)i;
    p[0] = (unsigned char)u;
    p[1] = (unsigned char)(u >> 8);
}


static inline int
member(Space *self, int32_t s, PyObject *e)
{
    return s >= 0 && s < self->top && self->alive[s] && self->entity[s] == e;
}

/*
 * The slot of member entity e, -1 (no error) when e is not in the space, -2
 * with an error.  A missing slot attribute, or one that is no int, is no slot
 * of ours: PySpace never reads it, so such an entity is simply not a member.
 */
static int32_t
slot_of(Space *self, PyObject *e)
{
    PyObject *v = PyObject_GetAttr(e, s_slot);
    if (v == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError))
            return -2;
        PyErr_Clear();
        return -1;
    }
    if (!PyLong_Check(v)) {
        Py_DECREF(v);
        return -1;
    }
    long s = PyLong_AsLong(v);
    Py_DECREF(v);
    if (s == -1 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError))
            return -2;
        PyErr_Clear();
        return -1;
    }
    if (s < 0 || s >= self->top || !member(self, (int32_t)s, e))
        return -1;
    return (int32_t)s;
}

static int
set_slot(PyObject *e, long slot)
{
    PyObject *v = PyLong_FromLong(slot);
    if (v == NULL)
        return -1;
    int r = PyObject_SetAttr(e, s_slot, v);
    Py_DECREF(v);
    return r;
}

static int
space_init(Space *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"width", "depth", "radius", "hysteresis", NULL};
    double width, depth, radius, hysteresis;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "dddd", kwlist,
                                     &width, &depth, &radius, &hysteresis))
        return -1;
    if (self->cells != NULL) {
        PyErr_SetString(PyExc_TypeError, "a Space is initialised once");
        return -1;
    }
    if (!(radius > 0.0) || !(width >= 0.0) || !(depth >= 0.0) || !(hysteresis >= 0.0)) {
        PyErr_SetString(PyExc_ValueError, "radius must be > 0, sizes and hysteresis >= 0");
        return -1;
    }
    double cols = floor(width / radius) + 1, rows = floor(depth / radius) + 1;
    if (cols * rows > 50e6) {
        PyErr_SetString(PyExc_ValueError, "too many interest cells (zone size / radius)");
        return -1;
    }
    int32_t ncols = (int32_t)cols, nrows = (int32_t)rows, ncells = ncols * nrows;
    /* Both or neither: ready() takes cells for a whole initialisation. */
    IVec *cv = PyMem_Calloc((size_t)ncells, sizeof(IVec));
    int32_t *nb = PyMem_Malloc((size_t)ncells * 9 * sizeof(int32_t));
    if (cv == NULL || nb == NULL) {
        PyMem_Free(cv);
        PyMem_Free(nb);
        PyErr_NoMemory();
        return -1;
    }
    for (int32_t c = 0; c < ncells; c++) {
        int32_t cx = c % ncols, cz = c / ncols, k = 0;
        for (int32_t j = cz > 0 ? cz - 1 : 0; j < cz + 2 && j < nrows; j++)
            for (int32_t i = cx > 0 ? cx - 1 : 0; i < cx + 2 && i < ncols; i++)
                nb[c * 9 + k++] = j * ncols + i;
        while (k < 9)
            nb[c * 9 + k++] = -1;
    }
    self->size = radius;
    self->radius = radius;
    self->r2 = radius * radius;
    self->o2 = (radius + hysteresis) * (radius + hysteresis);
    self->cols = ncols;
    self->rows = nrows;
    self->ncells = ncells;
    self->nb = nb;
    self->cells = cv;
    self->curStamp = 0;
    return 0;
}

static int
space_traverse(Space *self, visitproc visit, void *arg)
{
    for (int32_t s = 0; s < self->top; s++) {
        Py_VISIT(self->entity[s]);
        Py_VISIT(self->session[s]);
    }
    return 0;
}

static int
space_clear(Space *self)
{
    /*
     * Empty first, then let go: a reference dropped may run a finalizer that
     * still reaches this space (gc clears a cycle in any order), and it must
     * find an empty space, not observers whose entity is gone.  The old slots
     * are not reused (top stays; the free list is emptied): new members go
     * above them.
     */
    int32_t top = self->top;
    for (int32_t c = 0; c < self->ncells && self->cells; c++)
        self->cells[c].n = 0;
    self->observers.n = self->movedList.n = self->freelist.n = self->evList.n = 0;
    for (int32_t s = 0; s < top; s++) {
        self->alive[s] = self->moved[s] = 0;
        self->vis[s].n = self->enters[s].n = self->leaves[s].n = 0;
        self->ev[s].n = 0;
    }
    for (int32_t s = 0; s < top; s++) {
        Py_CLEAR(self->session[s]);
        Py_CLEAR(self->entity[s]);
    }
    return 0;
}

static void
space_dealloc(Space *self)
{
    PyObject_GC_UnTrack(self);
    space_clear(self);
    for (int32_t c = 0; c < self->ncells && self->cells; c++)
        ivec_free(&self->cells[c]);
    for (int32_t s = 0; s < self->cap; s++) {
        ivec_free(&self->vis[s]);
        ivec_free(&self->enters[s]);
        ivec_free(&self->leaves[s]);
        bvec_free(&self->ev[s]);
    }
    PyMem_Free(self->cells);
    PyMem_Free(self->nb);
    PyMem_Free(self->x);
    PyMem_Free(self->z);
    PyMem_Free(self->cell);
    PyMem_Free(self->cellpos);
    PyMem_Free(self->obspos);
    PyMem_Free(self->stamp);
    PyMem_Free(self->eid);
    PyMem_Free(self->alive);
    PyMem_Free(self->moved);
    PyMem_Free(self->rec);
    PyMem_Free(self->entity);
    PyMem_Free(self->session);
    PyMem_Free(self->vis);
    PyMem_Free(self->enters);
    PyMem_Free(self->leaves);
    PyMem_Free(self->ev);
    ivec_free(&self->freelist);
    ivec_free(&self->movedList);
    ivec_free(&self->observers);
    ivec_free(&self->inner);
    ivec_free(&self->next);
    ivec_free(&self->entered);
    ivec_free(&self->left);
    ivec_free(&self->evList);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
ready(Space *self)
{
    if (self->cells == NULL) {
        PyErr_SetString(PyExc_TypeError, "Space.__init__ was not called");
        return 0;
    }
    return 1;
}

/* --- membership ---------------------------------------------------------- */

/*
 * Take member slot out of every structure and onto the free list; its
 * watchers get a leave.  The slot's references stay for the caller to drop
 * after its last call into Python.  -1 (MemoryError) with nothing changed:
 * everything that may allocate is reserved before the first change.
 */
static int
detach(Space *self, int32_t slot)
{
    IVec *seen = &self->entered;    /* scratch: the observers that see it */
    seen->n = 0;
    for (int32_t k = 0; k < self->observers.n; k++) {
        int32_t o = self->observers.a[k];
        if (sorted_find(&self->vis[o], slot) >= 0
            && (ivec_push(seen, o) < 0
                || ivec_reserve(&self->leaves[o], self->leaves[o].n + 1) < 0))
            return -1;
    }
    cell_remove(self, slot);
    if (self->moved[slot]) {
        ivec_discard(&self->movedList, slot);
        self->moved[slot] = 0;
    }
    if (self->ev[slot].n) {
        /* Its pending records die with it, as in PySpace. */
        ivec_discard(&self->evList, slot);
        self->ev[slot].n = 0;
    }
    for (int32_t k = 0; k < seen->n; k++) {
        int32_t o = seen->a[k];
        IVec *v = &self->vis[o], *lv = &self->leaves[o];
        int32_t at = sorted_find(v, slot);
        memmove(v->a + at, v->a + at + 1, (size_t)(v->n - at - 1) * sizeof(int32_t));
        v->n--;
        lv->a[lv->n++] = (int32_t)self->eid[slot];
        ivec_discard(&self->enters[o], slot);
    }
    if (self->session[slot] != NULL) {
        int32_t pos = self->obspos[slot], last = self->observers.a[--self->observers.n];
        if (pos < self->observers.n) {
            self->observers.a[pos] = last;
            self->obspos[last] = pos;
        }
        self->obspos[slot] = -1;
    }
    self->vis[slot].n = self->enters[slot].n = self->leaves[slot].n = 0;
    self->alive[slot] = 0;
    /* Cannot fail: add keeps room for every slot below top. */
    self->freelist.a[self->freelist.n++] = slot;
    return 0;
}

/* Drop a detached slot's references; last, as it may run finalizers. */
static void
release(Space *self, int32_t slot)
{
    PyObject *e = self->entity[slot], *session = self->session[slot];
    self->entity[slot] = self->session[slot] = NULL;
    Py_XDECREF(session);
    Py_XDECREF(e);
}

static PyObject *
space_add(Space *self, PyObject *e)
{
    if (!ready(self))
        return NULL;
    double x, z;
    if (get_attr_double(e, s_x, &x) < 0 || get_attr_double(e, s_z, &z) < 0)
        return NULL;
    PyObject *idobj = PyObject_GetAttr(e, s_id);
    if (idobj == NULL)
        return NULL;
    unsigned long id = PyLong_AsUnsignedLong(idobj);
    Py_DECREF(idobj);
    if (id == (unsigned long)-1 && PyErr_Occurred())
        return NULL;
    if (id > 0xFFFFFFFFUL) {
        PyErr_SetString(PyExc_OverflowError, "entity id must fit in uint32");
        return NULL;
    }
    PyObject *session = PyObject_GetAttr(e, s_session);
    if (session == NULL)
        return NULL;
    /* Last of the reads, which may run Python code that adds e itself. */
    int32_t have = slot_of(self, e);
    if (have != -1) {
        if (have >= 0)
            PyErr_SetString(PyExc_ValueError, "entity is already in this space");
        Py_DECREF(session);
        return NULL;
    }
    if (!self->freelist.n && self->top == self->cap && space_grow(self) < 0) {
        Py_DECREF(session);
        return NULL;
    }
    int32_t c = cell_of(self, x, z);
    /* Reserve first, so nothing below fails half-way. */
    if (ivec_reserve(&self->cells[c], self->cells[c].n + 1) < 0
        || ivec_reserve(&self->observers, self->observers.n + 1) < 0
        || ivec_reserve(&self->freelist, self->top + 1) < 0) {
        Py_DECREF(session);
        return NULL;
    }
    int32_t slot;
    if (self->freelist.n)
        slot = self->freelist.a[--self->freelist.n];
    else
        slot = self->top++;
    cell_add(self, slot, c);
    if (session != Py_None)
        ivec_push(&self->observers, slot);
    self->x[slot] = x;
    self->z[slot] = z;
    self->eid[slot] = (uint32_t)id;
    self->alive[slot] = 1;
    self->moved[slot] = 0;
    self->stamp[slot] = 0;
    self->vis[slot].n = self->enters[slot].n = self->leaves[slot].n = 0;
    Py_INCREF(e);
    self->entity[slot] = e;
    if (session != Py_None) {
        self->session[slot] = session; /* our reference */
        self->obspos[slot] = self->observers.n - 1;
    }
    else {
        Py_DECREF(session);
        self->session[slot] = NULL;
        self->obspos[slot] = -1;
    }
    if (set_slot(e, slot) < 0) {
        /* No slot attribute (or no memory): e cannot be addressed, so it is
         * not kept, as PySpace fails before it keeps anything. */
        if (member(self, slot, e) && detach(self, slot) == 0)
            release(self, slot);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
space_remove(Space *self, PyObject *e)
{
    if (!ready(self))
        return NULL;
    int32_t slot = slot_of(self, e);
    if (slot == -2)
        return NULL;
    if (slot < 0)
        Py_RETURN_NONE;
    if (detach(self, slot) < 0)
        return NULL;
    /* The space is whole again before any Python code runs. */
    PyObject *ent = self->entity[slot], *session = self->session[slot];
    self->entity[slot] = self->session[slot] = NULL;
    int r = set_slot(e, -1);
    Py_XDECREF(session);
    Py_DECREF(ent);
    if (r < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
space_reset(Space *self, PyObject *e)
{
    if (!ready(self))
        return NULL;
    int32_t slot = slot_of(self, e);
    if (slot == -2)
        return NULL;
    if (slot >= 0)
        self->vis[slot].n = self->enters[slot].n = self->leaves[slot].n = 0;
    Py_RETURN_NONE;
}

/* --- movement ------------------------------------------------------------ */

static PyObject *
space_move(Space *self, PyObject *e)
{
    if (!ready(self))
        return NULL;
    int32_t slot = slot_of(self, e);
    if (slot == -2)
        return NULL;
    if (slot < 0) {
        PyErr_SetString(PyExc_ValueError, "entity is not in this space");
        return NULL;
    }
    double x, z, vx, vz;
    if (get_attr_double(e, s_x, &x) < 0 || get_attr_double(e, s_z, &z) < 0
        || get_attr_double(e, s_vx, &vx) < 0 || get_attr_double(e, s_vz, &vz) < 0)
        return NULL;
    PyObject *ctobj = PyObject_GetAttr(e, s_ct);
    if (ctobj == NULL)
        return NULL;
    unsigned long ct = PyLong_AsUnsignedLongMask(ctobj);
    Py_DECREF(ctobj);
    if (ct == (unsigned long)-1 && PyErr_Occurred())
        return NULL;
    /* The reads may have run Python code that removed e (its slot reused). */
    if (!member(self, slot, e)) {
        PyErr_SetString(PyExc_ValueError, "entity is not in this space");
        return NULL;
    }
    int32_t c = cell_of(self, x, z);
    /* Reserve first: a cell change half done would lose the entity. */
    if ((!self->moved[slot] && ivec_reserve(&self->movedList, self->movedList.n + 1) < 0)
        || (c != self->cell[slot] && ivec_reserve(&self->cells[c], self->cells[c].n + 1) < 0))
        return NULL;
    if (!self->moved[slot]) {
        self->movedList.a[self->movedList.n++] = slot;
        self->moved[slot] = 1;
    }
    self->x[slot] = x;
    self->z[slot] = z;
    unsigned char *r = self->rec + (size_t)slot * REC;
    put_u32(r, self->eid[slot]);
    put_f32(r + 4, x);
    put_f32(r + 8, z);
    put_i16(r + 12, vx);
    put_i16(r + 14, vz);
    put_u32(r + 16, (uint32_t)ct);
    if (c != self->cell[slot]) {
        cell_remove(self, slot);
        cell_add(self, slot, c);
    }
    Py_RETURN_NONE;
}

static PyObject *
space_moved(Space *self, PyObject *unused)
{
    if (!ready(self))
        return NULL;
    /* No gc (and so no finalizer) between sizing the list and filling it. */
    int gc = PyGC_Disable();
    PyObject *out = PyList_New(self->movedList.n);
    if (gc)
        PyGC_Enable();
    if (out == NULL)
        return NULL;
    for (int32_t k = 0; k < self->movedList.n; k++) {
        PyObject *e = self->entity[self->movedList.a[k]];
        Py_INCREF(e);
        PyList_SET_ITEM(out, k, e);
    }
    return out;
}

/* --- combat records ------------------------------------------------------- */

static PyObject *
space_event(Space *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (!ready(self))
        return NULL;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "event(entity, record)");
        return NULL;
    }
    int32_t slot = slot_of(self, args[0]);
    if (slot == -2)
        return NULL;
    if (slot < 0) {
        PyErr_SetString(PyExc_ValueError, "entity is not in this space");
        return NULL;
    }
    /* Exactly bytes, as PySpace: a bytearray or memoryview could change later. */
    PyObject *record = args[1];
    if (!PyBytes_CheckExact(record)) {
        PyErr_SetString(PyExc_TypeError, "a record is bytes");
        return NULL;
    }
    Py_ssize_t n = PyBytes_GET_SIZE(record);
    if (n == 0)
        Py_RETURN_NONE; /* nothing to send: PySpace's empty chunk sends nothing */
    BVec *b = &self->ev[slot];
    /* Reserve first: records listed nowhere would never be sent nor cleared. */
    if (!b->n && ivec_reserve(&self->evList, self->evList.n + 1) < 0)
        return NULL;
    int first = !b->n;
    if (bvec_append(b, PyBytes_AS_STRING(record), n) < 0)
        return NULL;
    if (first)
        self->evList.a[self->evList.n++] = slot;
    Py_RETURN_NONE;
}

/* --- interest ------------------------------------------------------------- */

static int
recompute(Space *self, int32_t o)
{
    double ox = self->x[o], oz = self->z[o], r2 = self->r2, o2 = self->o2;
    /* PySpace's x band: at the rim it decides, not the distance alone. */
    double lo = ox - self->radius, hi = ox + self->radius;
    const double *X = self->x, *Z = self->z;
    IVec *inner = &self->inner, *next = &self->next;
    IVec *entered = &self->entered, *left = &self->left;
    const int32_t *nb = self->nb + (size_t)self->cell[o] * 9;
    inner->n = 0;
    for (int q = 0; q < 9 && nb[q] >= 0; q++) {
        const IVec *cv = &self->cells[nb[q]];
        for (int32_t k = 0; k < cv->n; k++) {
            int32_t s = cv->a[k];
            if (s == o || !(X[s] >= lo && X[s] <= hi))
                continue;
            double dx = X[s] - ox, dz = Z[s] - oz;
            if (dx * dx + dz * dz <= r2 && ivec_push(inner, s) < 0)
                return -1;
        }
    }
    sort_slots(inner->a, inner->n);
    IVec *old = &self->vis[o];
    next->n = entered->n = left->n = 0;
    int32_t i = 0, j = 0;
    while (i < old->n || j < inner->n) {
        int32_t s;
        if (j >= inner->n || (i < old->n && old->a[i] < inner->a[j])) {
            /* Kept though outside the radius: within radius + hysteresis. */
            s = old->a[i++];
            double dx = X[s] - ox, dz = Z[s] - oz;
            if (ivec_push(dx * dx + dz * dz <= o2 ? next : left, s) < 0)
                return -1;
        }
        else if (i >= old->n || inner->a[j] < old->a[i]) {
            s = inner->a[j++];
            if (ivec_push(next, s) < 0 || ivec_push(entered, s) < 0)
                return -1;
        }
        else {
            if (ivec_push(next, old->a[i]) < 0)
                return -1;
            i++;
            j++;
        }
    }
    if (!entered->n && !left->n)
        return 0;
    IVec *en = &self->enters[o], *lv = &self->leaves[o];
    /* Reserve first: a view changed without its enters would never be sent. */
    if (ivec_reserve(en, en->n + entered->n) < 0 || ivec_reserve(lv, lv->n + left->n) < 0)
        return -1;
    IVec t = *old;
    *old = *next;
    *next = t;
    for (int32_t k = 0; k < entered->n; k++)
        en->a[en->n++] = entered->a[k];
    for (int32_t k = 0; k < left->n; k++) {
        int32_t s = left->a[k];
        ivec_discard(en, s);
        lv->a[lv->n++] = (int32_t)self->eid[s];
    }
    return 0;
}

static PyObject *
space_update(Space *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (!ready(self))
        return NULL;
    if (nargs < 2 || nargs > 3) {
        PyErr_SetString(PyExc_TypeError, "update(tick, interval, forced=())");
        return NULL;
    }
    long long tick = PyLong_AsLongLong(args[0]);
    if (tick == -1 && PyErr_Occurred())
        return NULL;
    long long interval = PyLong_AsLongLong(args[1]);
    if (interval == -1 && PyErr_Occurred())
        return NULL;
    if (interval < 1) {
        PyErr_SetString(PyExc_ValueError, "interval must be >= 1");
        return NULL;
    }
    if (self->curStamp == INT32_MAX) {
        memset(self->stamp, 0, (size_t)self->cap * sizeof(int32_t));
        self->curStamp = 0;
    }
    int32_t cur = ++self->curStamp;
    /* Python's modulo; and no step past the last cell (no overflow). */
    long long phase = tick % interval;
    if (phase < 0)
        phase += interval;
    long long step = interval < self->ncells ? interval : self->ncells;
    for (long long c = phase; c < self->ncells; c += step) {
        const IVec *cv = &self->cells[c];
        for (int32_t k = 0; k < cv->n; k++) {
            int32_t s = cv->a[k];
            if (self->session[s] != NULL && self->stamp[s] != cur) {
                self->stamp[s] = cur;
                if (recompute(self, s) < 0)
                    return NULL;
            }
        }
    }
    if (nargs == 3 && args[2] != Py_None) {
        PyObject *it = PyObject_GetIter(args[2]);
        if (it == NULL)
            return NULL;
        PyObject *e;
        while ((e = PyIter_Next(it)) != NULL) {
            int32_t s = slot_of(self, e);
            Py_DECREF(e);
            if (s == -2) {
                Py_DECREF(it);
                return NULL;
            }
            if (s >= 0 && self->session[s] != NULL && self->stamp[s] != cur) {
                self->stamp[s] = cur;
                if (recompute(self, s) < 0) {
                    Py_DECREF(it);
                    return NULL;
                }
            }
        }
        Py_DECREF(it);
        if (PyErr_Occurred())
            return NULL;
    }
    Py_RETURN_NONE;
}

/* --- replication ----------------------------------------------------------- */

static PyObject *
ids_list(Space *self, const IVec *v, int slots)
{
    PyObject *out = PyList_New(v->n);
    if (out == NULL)
        return NULL;
    for (int32_t k = 0; k < v->n; k++) {
        uint32_t id = slots ? self->eid[v->a[k]] : (uint32_t)v->a[k];
        PyObject *i = PyLong_FromUnsignedLong(id);
        if (i == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, k, i);
    }
    return out;
}

/* The size of a msgpack bin head for n bytes. */
static inline Py_ssize_t
bin_head_len(Py_ssize_t n)
{
    return n < 0x100 ? 2 : n < 0x10000 ? 3 : 5;
}

/* A msgpack bin head for n (<= 0xFFFFFFFF) bytes at p; the end of it. */
static inline unsigned char *
put_bin_head(unsigned char *p, Py_ssize_t n)
{
    if (n < 0x100) {
        *p++ = 0xc4;
        *p++ = (unsigned char)n;
    }
    else if (n < 0x10000) {
        *p++ = 0xc5;
        *p++ = (unsigned char)(n >> 8);
        *p++ = (unsigned char)n;
    }
    else {
        *p++ = 0xc6;
        *p++ = (unsigned char)(n >> 24);
        *p++ = (unsigned char)(n >> 16);
        *p++ = (unsigned char)(n >> 8);
        *p++ = (unsigned char)n;
    }
    return p;
}

/* Observer o's combat records (its own, then those of what it sees) at p; the end. */
static unsigned char *
put_events(Space *self, int32_t o, unsigned char *p)
{
    const BVec *ev = self->ev;
    const IVec *v = &self->vis[o];
    if (ev[o].n) {
        memcpy(p, ev[o].a, (size_t)ev[o].n);
        p += ev[o].n;
    }
    for (int32_t q = 0; q < v->n; q++) {
        const BVec *b = &ev[v->a[q]];
        if (b->n) {
            memcpy(p, b->a, (size_t)b->n);
            p += b->n;
        }
    }
    return p;
}

/*
 * The update {"t": "world.u", "m": moves?, "c": records} of observer o, as
 * wire.codec.encode writes that dict: m (mlen bytes) only when it has moves.
 */
static PyObject *
update_with_events(Space *self, int32_t o, Py_ssize_t mlen, Py_ssize_t clen)
{
    const IVec *v = &self->vis[o];
    const uint8_t *moved = self->moved;
    Py_ssize_t size = 1 + TYPE_LEN + 2 + bin_head_len(clen) + clen;
    if (mlen)
        size += 2 + bin_head_len(mlen) + mlen;
    PyObject *b = PyBytes_FromStringAndSize(NULL, size);
    if (b == NULL)
        return NULL;
    unsigned char *p = (unsigned char *)PyBytes_AS_STRING(b);
    *p++ = mlen ? 0x83 : 0x82;
    memcpy(p, PREFIX + TYPE_AT, TYPE_LEN);
    p += TYPE_LEN;
    if (mlen) {
        *p++ = 0xa1;
        *p++ = 'm';
        p = put_bin_head(p, mlen);
        for (int32_t q = 0; q < v->n; q++) {
            int32_t s = v->a[q];
            if (moved[s]) {
                memcpy(p, self->rec + (size_t)s * REC, REC);
                p += REC;
            }
        }
    }
    *p++ = 0xa1;
    *p++ = 'c';
    p = put_bin_head(p, clen);
    put_events(self, o, p);
    return b;
}

/*
 * Each observer's update of this tick into sends (encoded) or others.  Inlined
 * twice: with events 0 (no records this tick) it is the moves-only loop it
 * was before records existed, not one that tests for them per observer.
 */
static ALWAYS_INLINE int
replicate_observers(Space *self, PyObject *sends, PyObject *others, long long *nbytes,
                    const int events)
{
    const uint8_t *moved = self->moved;
    const BVec *ev = self->ev;
    for (int32_t k = 0; k < self->observers.n; k++) {
        int32_t o = self->observers.a[k];
        const IVec *v = &self->vis[o];
        IVec *en = &self->enters[o], *lv = &self->leaves[o];
        int plain = !en->n && !lv->n;
        Py_ssize_t n = 0, clen = 0;
        if (!events) {
            for (int32_t q = 0; q < v->n; q++)
                if (moved[v->a[q]] && (plain || !ivec_contains(en, v->a[q])))
                    n++;
        }
        else {
            /* Its own records and those of what it sees, entering or not. */
            clen = ev[o].n;
            for (int32_t q = 0; q < v->n; q++) {
                int32_t s = v->a[q];
                clen += ev[s].n;
                if (moved[s] && (plain || !ivec_contains(en, s)))
                    n++;
            }
            if (clen > 0xFFFFFFFF) {
                PyErr_SetString(PyExc_OverflowError, "combat records too long for one update");
                return -1;
            }
        }
        if (plain && !n && !clen)
            continue;
        Py_ssize_t mlen = n * REC, head = 0;
        if (plain && clen) {
            if (mlen > 0xFFFFFFFF) {
                PyErr_SetString(PyExc_OverflowError, "moves too long for one update");
                return -1;
            }
            PyObject *b = update_with_events(self, o, mlen, clen);
            if (b == NULL)
                return -1;
            PyObject *t = PyTuple_Pack(2, self->session[o], b);
            Py_DECREF(b);
            if (t == NULL)
                return -1;
            *nbytes += mlen + clen;
            int r = PyList_Append(sends, t);
            Py_DECREF(t);
            if (r < 0)
                return -1;
            continue;
        }
        if (plain) {
            head = PREFIX_LEN + (mlen < 0x100 ? 2 : mlen < 0x10000 ? 3 : 5);
        }
        PyObject *b = PyBytes_FromStringAndSize(NULL, head + mlen);
        if (b == NULL)
            return -1;
        unsigned char *p = (unsigned char *)PyBytes_AS_STRING(b);
        if (plain) {
            memcpy(p, PREFIX, PREFIX_LEN);
            p += PREFIX_LEN;
            if (mlen < 0x100) {
                *p++ = 0xc4;
                *p++ = (unsigned char)mlen;
            }
            else if (mlen < 0x10000) {
                *p++ = 0xc5;
                *p++ = (unsigned char)(mlen >> 8);
                *p++ = (unsigned char)mlen;
            }
            else {
                if (mlen > 0xFFFFFFFF) {
                    Py_DECREF(b);
                    PyErr_SetString(PyExc_OverflowError, "moves too long for one update");
                    return -1;
                }
                *p++ = 0xc6;
                *p++ = (unsigned char)(mlen >> 24);
                *p++ = (unsigned char)(mlen >> 16);
                *p++ = (unsigned char)(mlen >> 8);
                *p++ = (unsigned char)mlen;
            }
        }
        const unsigned char *rec = self->rec;
        for (int32_t q = 0; q < v->n; q++) {
            int32_t s = v->a[q];
            if (moved[s] && (plain || !ivec_contains(en, s))) {
                memcpy(p, rec + (size_t)s * REC, REC);
                p += REC;
            }
        }
        PyObject *t;
        if (plain) {
            t = PyTuple_Pack(2, self->session[o], b);
            *nbytes += mlen;
        }
        else {
            PyObject *ents = ids_list(self, en, 1), *lefts = ids_list(self, lv, 0);
            PyObject *c = PyBytes_FromStringAndSize(NULL, clen);
            if (c != NULL && clen)
                put_events(self, o, (unsigned char *)PyBytes_AS_STRING(c));
            t = (ents && lefts && c) ? PyTuple_Pack(5, self->entity[o], ents, lefts, b, c) : NULL;
            Py_XDECREF(ents);
            Py_XDECREF(lefts);
            Py_XDECREF(c);
        }
        Py_DECREF(b);
        if (t == NULL)
            return -1;
        int r = PyList_Append(plain ? sends : others, t);
        Py_DECREF(t);
        if (r < 0)
            return -1;
    }
    return 0;
}

static PyObject *
space_replicate(Space *self, PyObject *unused)
{
    if (!ready(self))
        return NULL;
    /*
     * No gc while the arrays are read: a finalizer it ran could change the
     * space (grow the arrays, remove an observer) under this loop.  Nothing
     * else here runs Python code.
     */
    int gc = PyGC_Disable();
    PyObject *sends = PyList_New(0), *others = PyList_New(0);
    if (sends == NULL || others == NULL)
        goto fail;
    long long nbytes = 0;
    if ((self->evList.n ? replicate_observers(self, sends, others, &nbytes, 1)
                        : replicate_observers(self, sends, others, &nbytes, 0)) < 0)
        goto fail;
    PyObject *out = Py_BuildValue("(NNL)", sends, others, nbytes);
    if (out != NULL) {
        /* Consumed only now: after a MemoryError the next call sends it all. */
        if (PyList_GET_SIZE(others))
            for (int32_t k = 0; k < self->observers.n; k++) {
                int32_t o = self->observers.a[k];
                self->enters[o].n = self->leaves[o].n = 0;
            }
        for (int32_t k = 0; k < self->movedList.n; k++)
            self->moved[self->movedList.a[k]] = 0;
        self->movedList.n = 0;
        for (int32_t k = 0; k < self->evList.n; k++) {
            BVec *b = &self->ev[self->evList.a[k]];
            b->n = 0;
            /* A burst's buffer is not kept for the rest of the entity's life. */
            if (b->cap > 4096)
                bvec_free(b);
        }
        self->evList.n = 0;
    }
    if (gc)
        PyGC_Enable();
    return out;
fail:
    Py_XDECREF(sends);
    Py_XDECREF(others);
    if (gc)
        PyGC_Enable();
    return NULL;
}

/* --- reading ------------------------------------------------------------------ */

/*
 * The empty result set of a reading method and e's slot (-1 when e is not a
 * member: the set is then the answer).  The set comes first: gc in its
 * allocation may run a finalizer that removes e.
 */
static PyObject *
member_set(Space *self, PyObject *e, int32_t *slot)
{
    if (!ready(self))
        return NULL;
    PyObject *out = PySet_New(NULL);
    if (out == NULL)
        return NULL;
    *slot = slot_of(self, e);
    if (*slot == -2)
        Py_CLEAR(out);
    return out;
}

static PyObject *
space_visible(Space *self, PyObject *e)
{
    int32_t slot;
    PyObject *out = member_set(self, e, &slot);
    if (out == NULL || slot < 0)
        return out;
    for (int32_t k = 0; k < self->vis[slot].n; k++) {
        PyObject *i = PyLong_FromUnsignedLong(self->eid[self->vis[slot].a[k]]);
        if (i == NULL || PySet_Add(out, i) < 0) {
            Py_XDECREF(i);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(i);
    }
    return out;
}

static PyObject *
space_watchers(Space *self, PyObject *e)
{
    int32_t slot;
    PyObject *out = member_set(self, e, &slot);
    if (out == NULL || slot < 0)
        return out;
    for (int32_t k = 0; k < self->observers.n; k++) {
        int32_t o = self->observers.a[k];
        if (sorted_find(&self->vis[o], slot) >= 0 && PySet_Add(out, self->entity[o]) < 0) {
            Py_DECREF(out);
            return NULL;
        }
    }
    return out;
}

static PyObject *
space_cell(Space *self, PyObject *e)
{
    if (!ready(self))
        return NULL;
    int32_t slot = slot_of(self, e);
    if (slot == -2)
        return NULL;
    return PyLong_FromLong(slot < 0 ? -1 : self->cell[slot]);
}

static PyObject *
space_pairs(Space *self, PyObject *unused)
{
    if (!ready(self))
        return NULL;
    long long n = 0;
    for (int32_t k = 0; k < self->observers.n; k++)
        n += self->vis[self->observers.a[k]].n;
    return PyLong_FromLongLong(n);
}

static PyObject *
space_native(Space *self, void *closure)
{
    Py_RETURN_TRUE;
}

static PyMethodDef space_methods[] = {
    {"add", (PyCFunction)space_add, METH_O, "Put an entity in the space (IInterestSpace.add)."},
    {"remove", (PyCFunction)space_remove, METH_O, "Take an entity out; its watchers get a leave."},
    {"reset", (PyCFunction)space_reset, METH_O, "An observer forgets what it sees."},
    {"move", (PyCFunction)space_move, METH_O, "An entity's position, velocity or client time changed."},
    {"moved", (PyCFunction)space_moved, METH_NOARGS, "The entities moved since the last replicate."},
    {"event", (PyCFunction)(void (*)(void))space_event, METH_FASTCALL,
     "event(entity, record): combat records (bytes) of an entity, sent with the next replicate."},
    {"update", (PyCFunction)(void (*)(void))space_update, METH_FASTCALL,
     "update(tick, interval, forced=()): recompute the due observers."},
    {"replicate", (PyCFunction)space_replicate, METH_NOARGS,
     "(sends, others, movesBytes) of this tick (IInterestSpace.replicate)."},
    {"visible", (PyCFunction)space_visible, METH_O, "The set of ids an observer sees."},
    {"watchers", (PyCFunction)space_watchers, METH_O, "The set of observers that see an entity."},
    {"cell", (PyCFunction)space_cell, METH_O, "An entity's cell, -1 when not in the space."},
    {"pairs", (PyCFunction)space_pairs, METH_NOARGS, "The number of (observer, visible) pairs."},
    {NULL},
};

static PyGetSetDef space_getset[] = {
    {"native", (getter)space_native, NULL, "True: this is the C implementation.", NULL},
    {NULL},
};

static PyTypeObject SpaceType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mmoshard.world._space.Space",
    .tp_doc = PyDoc_STR("Space(width, depth, radius, hysteresis): the C IInterestSpace."),
    .tp_basicsize = sizeof(Space),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)space_init,
    .tp_dealloc = (destructor)space_dealloc,
    .tp_traverse = (traverseproc)space_traverse,
    .tp_clear = (inquiry)space_clear,
    .tp_methods = space_methods,
    .tp_getset = space_getset,
};

static struct PyModuleDef spacemodule = {
    PyModuleDef_HEAD_INIT, "mmoshard.world._space",
    "The C interest space: positions, cells, visible sets, move and combat records in arrays.", -1, NULL,
};

PyMODINIT_FUNC
PyInit__space(void)
{
    if (PyType_Ready(&SpaceType) < 0)
        return NULL;
#define INTERN(var, text) if ((var = PyUnicode_InternFromString(text)) == NULL) return NULL
    INTERN(s_slot, "slot");
    INTERN(s_id, "id");
    INTERN(s_x, "x");
    INTERN(s_z, "z");
    INTERN(s_vx, "vx");
    INTERN(s_vz, "vz");
    INTERN(s_ct, "ct");
    INTERN(s_session, "session");
#undef INTERN
    PyObject *m = PyModule_Create(&spacemodule);
    if (m == NULL)
        return NULL;
    Py_INCREF(&SpaceType);
    if (PyModule_AddObject(m, "Space", (PyObject *)&SpaceType) < 0) {
        Py_DECREF(&SpaceType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
