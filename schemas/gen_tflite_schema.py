"""Write graphtool/formats/tflite/schema.json: the TFLite flatbuffer schema as data.

graphtool reads and writes TFLite models with one generic, verifying flatbuffer codec
driven by this description (tables, their fields with slot numbers, types and defaults;
enums; unions). The description is derived from a flatc-generated Python module of
TFLite's schema.fbs — by default TensorFlow's own `tensorflow/lite/python/
schema_py_generated.py` — by reading its source, so no TensorFlow import is needed:

    python schemas/gen_tflite_schema.py [PATH/TO/schema_py_generated.py]

`make schema` runs it on the installed TensorFlow's module; it writes into the package
directly (the one copy).
"""
from __future__ import annotations

import ast
import importlib.util
import json
import re
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "graphtool" / "formats" / "tflite" / "schema.json"

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
    return {"file_identifier": "TFL3", "root_type": "Model", "enums": enums,
            "unions": {u: {k: v for k, v in vals.items() if k != "NONE"} for u, vals in unions.items()},
            "tables": tables}


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


def main(argv: list[str]) -> None:
    path = Path(argv[1]) if len(argv) > 1 else default_module()
    schema = describe(path.read_text())
    schema["derived_from"] = path.name
    OUT.write_text(json.dumps(schema, indent=1, sort_keys=False) + "\n")
    print(f"wrote {OUT}: {len(schema['tables'])} tables, {len(schema['enums'])} enums, "
          f"{len(schema['unions'])} unions")


if __name__ == "__main__":
    main(sys.argv)
