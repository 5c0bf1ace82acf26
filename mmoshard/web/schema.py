"""Request body schemas: strict validation to typed 400s, and their OpenAPI form (query and path parameters too)."""

import math
import re

import attrs

from mmoshard.web.json import HTTPError

# What an integer column holds: BIGINT in MySQL, INTEGER in SQLite, both
# signed 64-bit.  An integer with no bounds of its own gets these, so no
# value the database cannot take reaches a handler.
INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1

_TYPES = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}


def _number(value):
    """@return: C{value} as a message says it (an integer in full)."""
    return str(value) if type(value) is int else f"{value:g}"


@attrs.frozen
class Prop:
    """One property of a JSON request body."""

    type: str  # string, integer, number, boolean
    required: bool = True
    minLength: int | None = None
    maxLength: int | None = None
    pattern: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    nullable: bool = False
    description: str = ""
    enum: tuple = ()  # the only values allowed, when given
    default: object = None  # documented only: what an absent optional value means
    # The pattern, compiled once (re.fullmatch looks it up on every call).
    _fullmatch: object = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self):
        object.__setattr__(self, "_fullmatch",
                           None if self.pattern is None else re.compile(self.pattern).fullmatch)

    def check(self, value):
        """@return: why C{value} is not acceptable, or None."""
        if type(value) is str and self.type == "string":
            # The common case, first.
            return self._checkString(value)
        if value is None:
            return None if self.nullable else f"must be {self._kind()}, not null"
        if isinstance(value, bool) and self.type != "boolean":
            return f"must be {self._kind()}"
        if not isinstance(value, _TYPES[self.type]):
            return f"must be {self._kind()}"
        if self.type == "string":
            return self._checkString(value)
        else:
            if not math.isfinite(value):
                return "must be a finite number"
            low, high = self.bounds()
            if low is not None and value < low:
                return f"must be at least {_number(low)}"
            if high is not None and value > high:
                return f"must be at most {_number(high)}"
        return None

    def _checkString(self, value):
        if self.enum and value not in self.enum:
            return "must be one of " + ", ".join(self.enum)
        if self.minLength is not None and len(value) < self.minLength:
            return f"must be at least {self.minLength} characters"
        if self.maxLength is not None and len(value) > self.maxLength:
            return f"must be at most {self.maxLength} characters"
        if self._fullmatch is not None and not self._fullmatch(value):
            return "has characters that are not allowed"
        return None

    def bounds(self):
        """@return: (minimum, maximum), an integer's within the signed 64-bit range."""
        low, high = self.minimum, self.maximum
        if self.type == "integer":
            low = INT64_MIN if low is None else max(low, INT64_MIN)
            high = INT64_MAX if high is None else min(high, INT64_MAX)
        return low, high

    def _kind(self):
        return ("an " if self.type[0] in "aeiou" else "a ") + self.type

    def openapi(self):
        schema = {"type": self.type}
        for key in ("minLength", "maxLength", "pattern"):
            value = getattr(self, key)
            if value is not None:
                schema[key] = value
        for key, value in zip(("minimum", "maximum"), self.bounds()):
            if value is not None:
                schema[key] = value
        if self.enum:
            schema["enum"] = list(self.enum)
        if self.default is not None:
            schema["default"] = self.default
        if self.nullable:
            schema["nullable"] = True
        if self.description:
            schema["description"] = self.description
        return schema


def validate(data, props):
    """
    Check the parsed body C{data} (a dict) against C{props} (name -> L{Prop}).

    @return: C{data}, with absent optional properties as None.
    @raise HTTPError: 400 C{request.invalid}, with C{fields} naming every
        unknown, missing or bad property.
    """
    fields = {}
    for name in data:
        if name not in props:
            fields[name] = "unknown field"
    result = {}
    for name, prop in props.items():
        if name not in data:
            if prop.required:
                fields[name] = "is required"
            result[name] = None
            continue
        error = prop.check(data[name])
        if error:
            fields[name] = error
        result[name] = data[name]
    if fields:
        raise HTTPError(400, "request.invalid", "the request body has invalid fields",
                        fields=fields)
    return result


def objectSchema(props, closed=True):
    """@return: the OpenAPI schema of a body made of C{props}."""
    schema = {
        "type": "object",
        "additionalProperties": not closed,
        "properties": {name: p.openapi() for name, p in props.items()},
    }
    required = [name for name, p in props.items() if p.required]
    if required:
        schema["required"] = required
    return schema
