"""Game data the auth role needs: character classes and the start zone's spawn point."""


import attrs

from mmoshard.paths import readDataTOML

ROLES = ("tank", "healer", "damage")


@attrs.frozen
class CharacterClass:
    """A class a new character may take."""

    id: str
    name: str
    role: str
    description: str = ""

    def toJSON(self):
        return {"id": self.id, "name": self.name, "role": self.role,
                "description": self.description}


@attrs.frozen
class GameData:
    """The classes by id and where new characters appear."""

    classes: dict
    startZone: str
    spawn: tuple  # (x, y, z)


class GameDataError(ValueError):
    """The game data file is missing or malformed; the message says where."""


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def loadGameData(path):
    """
    Read the classes file (see C{etc/classes.toml}).

    @raise GameDataError: listing every problem found.
    """
    raw = readDataTOML(path, GameDataError)
    problems = []
    start = raw.get("start")
    if not isinstance(start, dict) or not isinstance(start.get("zone"), str):
        problems.append("[start] needs zone = \"...\" and x, y, z")
        start = {"zone": "", "x": 0, "y": 0, "z": 0}
    for axis in "xyz":
        if not _number(start.get(axis, 0)):
            problems.append(f"start.{axis} must be a number")
    classes = {}
    table = raw.get("classes")
    if not isinstance(table, dict) or not table:
        problems.append("[classes.<id>] tables are missing")
        table = {}
    for cid, spec in table.items():
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            problems.append(f"classes.{cid} needs name = \"...\"")
            continue
        if spec.get("role") not in ROLES:
            problems.append(f"classes.{cid}.role must be one of {', '.join(ROLES)}")
            continue
        classes[cid] = CharacterClass(cid, spec["name"], spec["role"],
                                      str(spec.get("description", "")))
    if problems:
        raise GameDataError(f"{path}: " + "; ".join(problems))
    spawn = tuple(float(start.get(axis, 0)) for axis in "xyz")
    return GameData(classes=classes, startZone=start["zone"], spawn=spawn)
