/* Helpers shared by the world's C modules (_space.c, _moves.c). */

#ifndef MMOSHARD_WORLD_NATIVE_H
#define MMOSHARD_WORLD_NATIVE_H

#include <Python.h>

/* float(getattr(o, name)) into *out; -1 with the exception set. */
static inline int
get_attr_double(PyObject *o, PyObject *name, double *out)
{
    PyObject *v = PyObject_GetAttr(o, name);
    if (v == NULL)
        return -1;
    double d = PyFloat_AsDouble(v);
    Py_DECREF(v);
    if (d == -1.0 && PyErr_Occurred())
        return -1;
    *out = d;
    return 0;
}

#endif
