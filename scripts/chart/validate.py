#!/usr/bin/python3
"""Offline schema check of rendered Kubernetes manifests.

usage: validate.py RENDERED.yaml [...]

Every document is checked against the API types of Debian's
python3-kubernetes (generated from the Kubernetes OpenAPI schema):
apiVersion/kind must be a known API, every field must exist (a misspelt
field is an error, unlike kubectl --validate=false), have the right type
(string, integer, boolean, list, map, object) and every required field must
be present. Object names and labels must follow Kubernetes' naming rules.
Prints one line per document and "N passed, M failed"; exit 1 on a failure.
"""
import re
import sys

import yaml

try:
    from kubernetes import client
except ImportError:
    sys.exit("validate.py: the python3-kubernetes package is missing; "
             "install it with scripts/install-deps.sh test")

# Quantities (resources.limits, PVC requests, ...) are typed as strings in
# the client but Kubernetes also accepts numbers there ("cpu: 1").
QUANTITY_MAPS = {"limits", "requests", "capacity", "hard", "allocatable"}
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
# Kinds whose names end up in DNS labels (63 characters at most).
LABEL_NAMED_KINDS = {"Service", "StatefulSet"}

_required_cache = {}


def required_attrs(cls):
    """Python attribute names whose setter rejects None."""
    if cls not in _required_cache:
        import inspect
        req = set()
        for attr in cls.openapi_types:
            prop = getattr(cls, attr, None)
            if isinstance(prop, property) and prop.fset is not None:
                src = inspect.getsource(prop.fset)
                if "must not be `None`" in src:
                    req.add(attr)
        _required_cache[cls] = req
    return _required_cache[cls]


def type_name(v):
    if v is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string",
            list: "list", dict: "map"}.get(type(v), type(v).__name__)


def check(value, typ, path, errs, parent=""):
    """Append to errs every way value does not match the client type typ."""
    if typ.startswith("list["):
        if not isinstance(value, list):
            errs.append(f"{path}: expected a list, got {type_name(value)}")
            return
        for i, v in enumerate(value):
            check(v, typ[5:-1], f"{path}[{i}]", errs)
        return
    if typ.startswith("dict("):
        if not isinstance(value, dict):
            errs.append(f"{path}: expected a map, got {type_name(value)}")
            return
        inner = typ[5:-1].split(", ", 1)[1]
        for k, v in value.items():
            if inner == "str" and parent in QUANTITY_MAPS and \
                    isinstance(v, (int, float)) and not isinstance(v, bool):
                continue
            check(v, inner, f"{path}.{k}", errs)
        return
    if typ == "object":
        return
    if typ in ("str", "datetime", "date"):
        if not isinstance(value, str):
            errs.append(f"{path}: expected a string, got {type_name(value)} "
                        f"({value!r}); quote it in the template")
        return
    if typ == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            errs.append(f"{path}: expected an integer, got "
                        f"{type_name(value)} ({value!r})")
        return
    if typ == "float":
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            errs.append(f"{path}: expected a number, got {type_name(value)}")
        return
    if typ == "bool":
        if not isinstance(value, bool):
            errs.append(f"{path}: expected a boolean, got "
                        f"{type_name(value)} ({value!r})")
        return
    cls = getattr(client.models, typ, None)
    if cls is None:
        errs.append(f"{path}: validator does not know type {typ}")
        return
    if not isinstance(value, dict):
        errs.append(f"{path}: expected an object ({typ}), got "
                    f"{type_name(value)}")
        return
    by_json = {j: a for a, j in cls.attribute_map.items()}
    for k, v in value.items():
        attr = by_json.get(k)
        if attr is None:
            known = ", ".join(sorted(by_json))
            errs.append(f"{path}.{k}: unknown field in {typ}; "
                        f"known fields: {known}")
            continue
        if v is None:
            continue  # null means "not set", as in the API server
        check(v, cls.openapi_types[attr], f"{path}.{k}", errs, k)
    for attr in sorted(required_attrs(cls)):
        j = cls.attribute_map[attr]
        if value.get(j) is None:
            errs.append(f"{path}.{j}: required field of {typ} is missing")


def check_labels(labels, path, errs):
    for k, v in (labels or {}).items():
        name = k.split("/", 1)[-1]
        if len(name) > 63 or not LABEL_NAME.match(name):
            errs.append(f"{path}.{k}: invalid label key")
        if not isinstance(v, str) or len(v) > 63 or not LABEL_VALUE.match(v):
            errs.append(f"{path}.{k}: invalid label value {v!r} (a string "
                        "of at most 63 letters, digits, '-', '_', '.')")


def api_class(api_version):
    """CoreV1Api, AppsV1Api, PolicyV1Api... for an apiVersion."""
    if "/" in api_version:
        group, version = api_version.split("/", 1)
        group = group.replace(".k8s.io", "")
        prefix = "".join(p.capitalize() for p in group.split("."))
    else:
        prefix, version = "Core", api_version
    return getattr(client, f"{prefix}{version.capitalize()}Api", None)


def snake(kind):
    return re.sub(r"(?<!^)(?=[A-Z])", "_", kind).lower()


def check_doc(doc, errs):
    api_version, kind = doc.get("apiVersion"), doc.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        errs.append("apiVersion and kind must be set")
        return
    api = api_class(api_version)
    methods = (f"create_namespaced_{snake(kind)}", f"create_{snake(kind)}")
    if api is None or not any(hasattr(api, m) for m in methods):
        errs.append(f"unknown kind {kind} in apiVersion {api_version}")
        return
    version = api_version.split("/")[-1]
    typ = version.capitalize() + kind
    if getattr(client.models, typ, None) is None:
        errs.append(f"no schema for {kind} {api_version}")
        return
    check(doc, typ, kind, errs)
    meta = doc.get("metadata") or {}
    name = meta.get("name")
    if not isinstance(name, str) or len(name) > 253 or \
            not DNS1123_SUBDOMAIN.match(name):
        errs.append(f"metadata.name {name!r} is not a DNS-1123 subdomain")
    elif kind in LABEL_NAMED_KINDS and (len(name) > 63 or
                                        not DNS1123_LABEL.match(name)):
        errs.append(f"metadata.name {name!r} of a {kind} must be a DNS-1123 "
                    "label (at most 63 characters)")
    check_labels(meta.get("labels"), "metadata.labels", errs)
    tmeta = (((doc.get("spec") or {}).get("template") or {})
             .get("metadata") or {})
    check_labels(tmeta.get("labels"), "spec.template.metadata.labels", errs)


def main(argv):
    if len(argv) < 2:
        sys.exit("usage: validate.py RENDERED.yaml [...]")
    n = bad = 0
    for path in argv[1:]:
        with open(path, encoding="utf-8") as f:
            docs = list(yaml.safe_load_all(f))
        for doc in docs:
            if doc is None:
                continue
            n += 1
            where = f"{path}: {doc.get('kind')}/" \
                    f"{(doc.get('metadata') or {}).get('name')}"
            errs = []
            check_doc(doc, errs)
            if errs:
                bad += 1
                for e in errs:
                    print(f"FAIL {where}: {e}")
            else:
                print(f"ok   {where}")
    print(f"{n - bad} passed, {bad} failed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
