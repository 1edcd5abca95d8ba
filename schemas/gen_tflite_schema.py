"""Write the TFLite schemas graphtool reads as data into graphtool/formats/tflite/.

graphtool reads and writes TFLite models with one generic, verifying flatbuffer codec
driven by a description of the schema (tables, their fields with slot numbers, types and
defaults; enums; unions). The description is derived from a flatc-generated Python module
of the schema by reading its source, so nothing is imported. Two schemas are described:

- schema.json, TFLite's schema.fbs (file identifier TFL3), from TensorFlow's own
  `tensorflow/lite/python/schema_py_generated.py` by default;
- metadata_schema.json, TFLite Support's metadata_schema.fbs (file identifier M001, the
  TFLITE_METADATA entry of a model), from tests/data/metadata_schema.fbs, a copy of
  tensorflow/tflite-support's tensorflow_lite_support/metadata/metadata_schema.fbs
  (schema 1.5.0), through flatc (Debian's flatbuffers-compiler).

    python schemas/gen_tflite_schema.py [PATH ...]

A PATH is a flatc-generated module or an .fbs (run through `flatc --python`); its file
identifier says which file it writes. Without one, both are written. `make schema` runs it;
it writes into the package directly (the one copy).
"""
from __future__ import annotations

import ast
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "graphtool" / "formats" / "tflite"
OUT = PACKAGE / "schema.json"
OUTPUTS = {"TFL3": OUT, "M001": PACKAGE / "metadata_schema.json"}  # file identifier -> what it writes
METADATA_FBS = ROOT / "tests" / "data" / "metadata_schema.fbs"
IDENTIFIER = re.compile(r'BufferHasIdentifier\(buf, offset, (b"[^"]*")')

SLOT_KINDS = {
    "PrependBoolSlot": "bool", "PrependInt8Slot": "int8", "PrependUint8Slot": "uint8",
    "PrependInt16Slot": "int16", "PrependUint16Slot": "uint16", "PrependInt32Slot": "int32",
    "PrependUint32Slot": "uint32", "PrependInt64Slot": "int64", "PrependUint64Slot": "uint64",
    "PrependFloat32Slot": "float32", "PrependFloat64Slot": "float64",
    "PrependUOffsetTRelativeSlot": "offset",
}
FLAGS = {"BoolFlags": "bool", "Int8Flags": "int8", "Uint8Flags": "uint8", "Int16Flags": "int16",
         "Uint16Flags": "uint16", "Int32Flags": "int32", "Uint32Flags": "uint32",
         "Int64Flags": "int64", "Uint64Flags": "uint64", "Float32Flags": "float32",
         "Float64Flags": "float64"}
# Schema names that camel-case -> snake-case cannot recover.
RENAMES = {"builtin_options2": "builtin_options_2", "builtin_options2_type": "builtin_options_2_type"}


def snake(camel: str) -> str:
    name = re.sub(r"(?<!^)(?=[A-Z])", "_", camel).lower()
    return RENAMES.get(name, name)


def default_module() -> Path:
    spec = importlib.util.find_spec("tensorflow")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("pass the path of a flatc-generated schema_py_generated.py (TensorFlow not found)")
    return Path(list(spec.submodule_search_locations)[0]) / "lite" / "python" / "schema_py_generated.py"


def flatc_module(fbs: Path) -> str:
    """The source of the Python module flatc generates from `fbs` (object API, one file)."""
    flatc = shutil.which("flatc")
    if flatc is None:
        sys.exit(f"{fbs.name} needs flatc (apt-get install flatbuffers-compiler)")
    with tempfile.TemporaryDirectory() as out:
        subprocess.run([flatc, "--python", "--gen-object-api", "--gen-onefile", "-o", out, str(fbs)],
                       check=True, capture_output=True)
        return (Path(out) / f"{fbs.stem}_generated.py").read_text()


def _const(node: ast.AST):
    return ast.literal_eval(node)


def describe(source: str) -> dict:
    tree = ast.parse(source)
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}

    enums, unions = {}, {}
    for name, cls in classes.items():
        if any(isinstance(n, ast.FunctionDef) for n in cls.body):
            continue
        values = {t.id: _const(a.value) for a in cls.body if isinstance(a, ast.Assign)
                  for t in a.targets if isinstance(t, ast.Name)}
        (unions if f"{name}Creator" in functions else enums)[name] = values

    tables = {}
    for name, cls in classes.items():
        methods = {m.name: m for m in cls.body if isinstance(m, ast.FunctionDef)}
        if "Init" not in methods or f"{name}Start" not in functions:
            continue
        tables[name] = _table(name, methods, functions, classes, source)
    return {"file_identifier": _identifier(source), "root_type": _root(tables, unions), "enums": enums,
            "unions": {u: {k: v for k, v in vals.items() if k != "NONE"} for u, vals in unions.items()},
            "tables": tables}


def _identifier(source: str) -> str:
    """The schema's file_identifier, as each table's BufferHasIdentifier checks it."""
    found = {ast.literal_eval(literal) for literal in IDENTIFIER.findall(source)}
    if len(found) != 1:
        raise ValueError(f"expected one file identifier, found {sorted(found)}")
    return found.pop().decode("ascii")


def _root(tables: dict, unions: dict) -> str:
    """The root table: the one no field, vector or union refers to."""
    used = {member for members in unions.values() for member in members}
    for table in tables.values():
        for field in table["fields"]:
            used.add(field.get("table") or (field.get("element") or {}).get("table"))
    roots = [name for name in tables if name not in used]
    if len(roots) != 1:
        raise ValueError(f"expected one root table, found {roots}")
    return roots[0]


def _call(fn: ast.FunctionDef) -> ast.Call:
    stmt = fn.body[0]
    value = stmt.value if isinstance(stmt, (ast.Expr, ast.Return)) else None
    assert isinstance(value, ast.Call), ast.dump(stmt)
    return value


def _table(name: str, methods: dict, functions: dict, classes: dict, source: str) -> dict:
    num_slots = _const(_call(functions[f"{name}Start"]).args[0])
    object_api = classes.get(f"{name}T")
    union_of = {}
    if object_api is not None:
        text = ast.get_source_segment(source, object_api)
        union_of = {attr: union for attr, union in re.findall(r"self\.(\w+) = (\w+)Creator\(", text)}
    fields = []
    prefix = f"{name}Add"
    for fname, fn in functions.items():
        if not fname.startswith(prefix) or fname == f"{name}AddX":
            continue
        camel = fname[len(prefix):]
        call = _call(fn)
        kind = SLOT_KINDS[call.func.attr]
        slot = _const(call.args[0])
        field = {"name": snake(camel), "slot": slot}
        if kind != "offset":
            field.update(kind="scalar", type=kind, default=_const(call.args[2]))
        else:
            field.update(_offset_field(name, camel, methods, functions, union_of, source))
        fields.append(field)
    fields.sort(key=lambda f: f["slot"])
    return {"num_slots": num_slots, "fields": fields}


def _offset_field(table: str, camel: str, methods: dict, functions: dict, union_of: dict, source: str) -> dict:
    accessor = methods[camel]
    text = ast.get_source_segment(source, accessor)
    is_vector = any(a.arg == "j" for a in accessor.args.args)
    table_match = re.search(r"obj = (\w+)\(\)", text)
    flags = re.search(r"number_types\.(\w+Flags)", text.split("\n", 2)[-1])
    if "self._tab.Union(" in text:
        attr = camel[0].lower() + camel[1:]
        return {"kind": "union", "union": union_of[attr]}
    if not is_vector:
        if "self._tab.String(" in text:
            return {"kind": "string"}
        if table_match:
            return {"kind": "table", "table": table_match.group(1)}
        raise ValueError(f"{table}.{camel}: unrecognised offset field")
    start = functions.get(f"{table}Start{camel}Vector")
    align = _const(_call(start).args[2]) if start is not None else None
    if "self._tab.String(" in text:
        element = {"kind": "string"}
    elif table_match:
        element = {"kind": "table", "table": table_match.group(1)}
    elif flags:
        element = {"kind": "scalar", "type": FLAGS[flags.group(1)]}
    else:
        raise ValueError(f"{table}.{camel}: unrecognised vector element")
    return {"kind": "vector", "element": element, "align": align}


def derive(path: Path) -> dict:
    """The schema as data, from a flatc-generated module or an .fbs."""
    schema = describe(flatc_module(path) if path.suffix == ".fbs" else path.read_text())
    schema["derived_from"] = path.name
    return schema


def main(argv: list[str]) -> None:
    for path in [Path(arg) for arg in argv[1:]] or [default_module(), METADATA_FBS]:
        schema = derive(path)
        out = OUTPUTS[schema["file_identifier"]]
        out.write_text(json.dumps(schema, indent=1, sort_keys=False) + "\n")
        print(f"wrote {out}: {len(schema['tables'])} tables, {len(schema['enums'])} enums, "
              f"{len(schema['unions'])} unions")


if __name__ == "__main__":
    main(sys.argv)
