/* Movement validation of a tick's queued inputs in C: Zone.applyInputs's loop, the same checks in the same order. */

/*
 * Zone.applyInputs (mmoshard/world/sim.py) is the reference; this runs the
 * same checks with the same Python semantics (exact int/float types, the
 * same comparisons, the original objects kept where Python keeps them), and
 * calls back into Python for what is rare: corrections, blocked terrain.
 * test_movement runs against both, and a randomised test compares them.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include "_native.h"
#include <math.h>

static PyObject *s_k, *s_x, *s_z, *s_vx, *s_vz, *s_ct, *s_corr, *s_budget, *s_budgetAt;
static PyObject *s_isBlocked, *s_pathBlocked;
static PyObject *why_bad, *why_bounds, *why_fast, *why_blocked;
static PyObject *zero_int, *zero_float, *mask32;

/* Python's float(v) for an exact int or float; 0 on success, 1 when an int
 * does not fit a double (it is then out of any range we check). */
static int
as_double(PyObject *v, double *out)
{
    if (PyFloat_CheckExact(v)) {
        *out = PyFloat_AS_DOUBLE(v);
        return 0;
    }
    double d = PyLong_AsDouble(v);
    if (d == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        return 1;
    }
    *out = d;
    return 0;
}

static inline int
is_num(PyObject *v)
{
    return v != NULL && (PyFloat_CheckExact(v) || PyLong_CheckExact(v));
}


static int
set_attr_double(PyObject *e, PyObject *name, double d)
{
    PyObject *v = PyFloat_FromDouble(d);
    if (v == NULL)
        return -1;
    int r = PyObject_SetAttr(e, name, v);
    Py_DECREF(v);
    return r;
}

static int
correct(PyObject *callback, PyObject *e, PyObject *why)
{
    PyObject *r = PyObject_CallFunctionObjArgs(callback, e, why, NULL);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* One input; -1 on error, 1 when dropped as stale, 0 otherwise. */
static int
apply_one(PyObject *e, PyObject *msg, double now, double width, double depth, double vmax,
          double cap, PyObject *terrain, PyObject *correctCb, PyObject *move)
{
    if (!PyTuple_CheckExact(msg) || PyTuple_GET_SIZE(msg) != 6) {
        PyErr_SetString(PyExc_TypeError, "a queued move must be pickMove's 6-tuple");
        return -1;
    }
    PyObject *xo = PyTuple_GET_ITEM(msg, 0), *zo = PyTuple_GET_ITEM(msg, 1);
    PyObject *vxo = PyTuple_GET_ITEM(msg, 2), *vzo = PyTuple_GET_ITEM(msg, 3);
    PyObject *cto = PyTuple_GET_ITEM(msg, 4), *k = PyTuple_GET_ITEM(msg, 5);
    PyObject *corr = PyObject_GetAttr(e, s_corr);
    if (corr == NULL)
        return -1;
    int same = PyObject_RichCompareBool(k, corr, Py_EQ);
    Py_DECREF(corr);
    if (same < 0)
        return -1;
    if (!same)
        return 1; /* sent before the client saw our last correction */
    if (!is_num(xo) || !is_num(zo))
        return correct(correctCb, e, why_bad);
    double x, z;
    int bigx = as_double(xo, &x), bigz = as_double(zo, &z);
    /* Also false for NaN and infinities. */
    if (bigx || bigz || !(0.0 <= x && x <= width && 0.0 <= z && z <= depth))
        return correct(correctCb, e, why_bounds);
    double ex, ez, budget, budgetAt;
    if (get_attr_double(e, s_x, &ex) < 0 || get_attr_double(e, s_z, &ez) < 0
        || get_attr_double(e, s_budget, &budget) < 0
        || get_attr_double(e, s_budgetAt, &budgetAt) < 0)
        return -1;
    double dx = x - ex, dz = z - ez;
    double dist = sqrt(dx * dx + dz * dz);
    budget = budget + vmax * (now - budgetAt);
    if (budget > cap)
        budget = cap;
    if (set_attr_double(e, s_budgetAt, now) < 0)
        return -1;
    if (dist > budget + 1e-6) {
        if (set_attr_double(e, s_budget, budget) < 0)
            return -1;
        return correct(correctCb, e, why_fast);
    }
    if (terrain != Py_None) {
        PyObject *r = PyObject_CallMethodObjArgs(terrain, s_isBlocked, xo, zo, NULL);
        int blocked = r ? PyObject_IsTrue(r) : -1;
        Py_XDECREF(r);
        if (blocked == 0) {
            PyObject *pex = PyObject_GetAttr(e, s_x), *pez = PyObject_GetAttr(e, s_z);
            r = (pex && pez) ? PyObject_CallMethodObjArgs(terrain, s_pathBlocked, pex, pez, xo, zo, NULL) : NULL;
            Py_XDECREF(pex);
            Py_XDECREF(pez);
            blocked = r ? PyObject_IsTrue(r) : -1;
            Py_XDECREF(r);
        }
        if (blocked < 0)
            return -1;
        if (blocked) {
            if (set_attr_double(e, s_budget, budget) < 0)
                return -1;
            return correct(correctCb, e, why_blocked);
        }
    }
    if (set_attr_double(e, s_budget, budget - dist) < 0)
        return -1;
    double vx = 0.0, vz = 0.0;
    int vxKeep = 1, vzKeep = 1; /* store the client's own objects */
    int ok = is_num(vxo) && is_num(vzo);
    if (ok && (as_double(vxo, &vx) || as_double(vzo, &vz)))
        ok = 0;
    if (!ok || !(-1e9 < vx && vx < 1e9 && -1e9 < vz && vz < 1e9)) {
        vx = vz = 0.0;
        vxKeep = vzKeep = 0;
    }
    else {
        double v2 = vx * vx + vz * vz;
        if (v2 > vmax * vmax) {
            double f = vmax / sqrt(v2);
            vx *= f;
            vz *= f;
            vxKeep = vzKeep = 0;
        }
    }
    PyObject *ct;
    if (PyLong_CheckExact(cto))
        ct = PyNumber_And(cto, mask32);
    else {
        ct = zero_int;
        Py_INCREF(ct);
    }
    if (ct == NULL)
        return -1;
    int r = PyObject_SetAttr(e, s_ct, ct);
    Py_DECREF(ct);
    if (r < 0)
        return -1;
    double evx, evz;
    if (get_attr_double(e, s_vx, &evx) < 0 || get_attr_double(e, s_vz, &evz) < 0)
        return -1;
    if (dist || vx != evx || vz != evz) {
        PyObject *nvx = vxKeep ? (Py_INCREF(vxo), vxo) : PyFloat_FromDouble(vx);
        PyObject *nvz = vzKeep ? (Py_INCREF(vzo), vzo) : PyFloat_FromDouble(vz);
        int bad = nvx == NULL || nvz == NULL
            || PyObject_SetAttr(e, s_x, xo) < 0 || PyObject_SetAttr(e, s_z, zo) < 0
            || PyObject_SetAttr(e, s_vx, nvx) < 0 || PyObject_SetAttr(e, s_vz, nvz) < 0;
        Py_XDECREF(nvx);
        Py_XDECREF(nvz);
        if (bad)
            return -1;
        PyObject *m = PyObject_CallOneArg(move, e);
        if (m == NULL)
            return -1;
        Py_DECREF(m);
    }
    return 0;
}

static PyObject *
apply_moves(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 9) {
        PyErr_SetString(PyExc_TypeError,
                        "applyMoves(inputs, now, width, depth, vmax, cap, terrain, correct, move)");
        return NULL;
    }
    PyObject *inputs = args[0], *terrain = args[6], *correctCb = args[7], *move = args[8];
    if (!PyDict_Check(inputs)) {
        PyErr_SetString(PyExc_TypeError, "inputs must be a dict of entity -> pickMove tuple");
        return NULL;
    }
    double v[5];
    for (int i = 0; i < 5; i++) {
        v[i] = PyFloat_AsDouble(args[1 + i]);
        if (v[i] == -1.0 && PyErr_Occurred())
            return NULL;
    }
    Py_ssize_t pos = 0, dropped = 0;
    PyObject *e, *msg;
    while (PyDict_Next(inputs, &pos, &e, &msg)) {
        /* The callbacks may not touch the dict: the zone swapped it out first. */
        Py_INCREF(e);
        Py_INCREF(msg);
        int r = apply_one(e, msg, v[0], v[1], v[2], v[3], v[4], terrain, correctCb, move);
        Py_DECREF(e);
        Py_DECREF(msg);
        if (r < 0)
            return NULL;
        dropped += r;
    }
    return PyLong_FromSsize_t(dropped);
}

/* sim.pickMove: (x, z, vx, vz, ct, k) with the message's defaults. */
static PyObject *
pick_move(PyObject *module, PyObject *msg)
{
    if (!PyDict_Check(msg)) {
        PyErr_SetString(PyExc_TypeError, "a move message must be a dict");
        return NULL;
    }
    PyObject *keys[6] = {s_x, s_z, s_vx, s_vz, s_ct, s_k};
    PyObject *defaults[6] = {Py_None, Py_None, zero_float, zero_float, zero_int, zero_int};
    PyObject *t = PyTuple_New(6);
    if (t == NULL)
        return NULL;
    for (int i = 0; i < 6; i++) {
        PyObject *v = PyDict_GetItemWithError(msg, keys[i]);
        if (v == NULL) {
            if (PyErr_Occurred()) {
                Py_DECREF(t);
                return NULL;
            }
            v = defaults[i];
        }
        Py_INCREF(v);
        PyTuple_SET_ITEM(t, i, v);
    }
    return t;
}

static PyMethodDef moves_methods[] = {
    {"pickMove", (PyCFunction)pick_move, METH_O,
     "pickMove(message) -> (x, z, vx, vz, ct, k): sim.pickMove, the queued form of a move."},
    {"applyMoves", (PyCFunction)(void (*)(void))apply_moves, METH_FASTCALL,
     "applyMoves(inputs, now, width, depth, vmax, cap, terrain, correct, move) -> dropped: "
     "inputs maps entities to pickMove tuples; "
     "Zone.applyInputs's loop. terrain is None or has isBlocked/pathBlocked; "
     "correct(entity, why) answers a refused move; move(entity) records an accepted one."},
    {NULL},
};

static struct PyModuleDef movesmodule = {
    PyModuleDef_HEAD_INIT, "mmoshard.world._moves",
    "Movement validation of a tick's queued inputs in C.", -1, moves_methods,
};

PyMODINIT_FUNC
PyInit__moves(void)
{
#define INTERN(var, text) if ((var = PyUnicode_InternFromString(text)) == NULL) return NULL
    INTERN(s_k, "k");
    INTERN(s_x, "x");
    INTERN(s_z, "z");
    INTERN(s_vx, "vx");
    INTERN(s_vz, "vz");
    INTERN(s_ct, "ct");
    INTERN(s_corr, "corr");
    INTERN(s_budget, "budget");
    INTERN(s_budgetAt, "budgetAt");
    INTERN(s_isBlocked, "isBlocked");
    INTERN(s_pathBlocked, "pathBlocked");
    INTERN(why_bad, "bad position");
    INTERN(why_bounds, "out of bounds");
    INTERN(why_fast, "too fast");
    INTERN(why_blocked, "blocked");
#undef INTERN
    if ((zero_float = PyFloat_FromDouble(0.0)) == NULL)
        return NULL;
    if ((zero_int = PyLong_FromLong(0)) == NULL || (mask32 = PyLong_FromUnsignedLong(0xFFFFFFFFUL)) == NULL)
        return NULL;
    return PyModule_Create(&movesmodule);
}
