#!/usr/bin/env python3
"""Validates the Kubernetes manifests offline.

- Every resource document in deploy/kubernetes validates against the Kubernetes
  API schemas (kubernetes-validate, strict: unknown fields are errors).
- Every kustomization names files and directories that exist.
- The service's settings in them are ones the code reads (each UPLOAD_* name is in
  the README's configuration table), and each worker's UPLOAD_WORKER_QUEUES names
  queues that exist (crates/domain/src/queue.rs).

Exit status 0 when all holds; 1 with what is wrong.
"""
import pathlib
import re
import sys

import kubernetes_validate
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
HERE = ROOT / "deploy" / "kubernetes"
KUBERNETES = "1.33.0"


def known_settings():
    readme = (ROOT / "README.md").read_text()
    return set(re.findall(r"`(UPLOAD_[A-Z0-9_]+)`", readme))


def known_queues():
    text = (ROOT / "crates/domain/src/queue.rs").read_text()
    return {full.split(".", 1)[1] for full in re.findall(r'= "([a-z]+\.[a-z]+)",', text)}


def settings_in(doc):
    """(name, value) of every UPLOAD_* setting a document gives."""
    if doc.get("kind") == "ConfigMap":
        yield from (doc.get("data") or {}).items()
    spec = doc.get("spec", {}).get("template", {}).get("spec", {})
    for container in spec.get("containers", []) + spec.get("initContainers", []):
        for env in container.get("env", []):
            yield env["name"], env.get("value", "")


def main():
    problems = []
    settings, queues = known_settings(), known_queues()
    checked = 0
    # Patches are partial resources: kustomize merges them, the schema does not apply.
    patches = {
        (k.parent / p["path"]).resolve()
        for k in HERE.rglob("kustomization.yaml")
        for p in (yaml.safe_load(k.read_text()) or {}).get("patches", [])
        if "path" in p
    }
    for path in sorted(HERE.rglob("*.yaml")):
        if path.resolve() in patches:
            continue
        rel = path.relative_to(ROOT)
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
        if path.name == "kustomization.yaml":
            (k,) = docs
            named = list(k.get("resources", []))
            named += [p["path"] for p in k.get("patches", []) if "path" in p]
            for gen in k.get("secretGenerator", []) + k.get("configMapGenerator", []):
                named += gen.get("envs", []) + gen.get("files", [])
            for name in named:
                target = path.parent / name
                if not target.exists():
                    problems.append(f"{rel} names {name}, which does not exist")
                elif target.is_dir() and not (target / "kustomization.yaml").exists():
                    problems.append(f"{rel} names {name}, a directory without a kustomization.yaml")
            continue
        for doc in docs:
            try:
                kubernetes_validate.validate(doc, KUBERNETES, strict=True)
            except kubernetes_validate.ValidationError as e:
                problems.append(f"{rel}: {doc.get('kind')} {doc['metadata']['name']}: {e.message} at {list(e.path)}")
            except kubernetes_validate.SchemaNotFoundError as e:
                problems.append(f"{rel}: {doc.get('kind')}: no schema ({e})")
            checked += 1
            for name, value in settings_in(doc):
                if name.startswith("UPLOAD_") and name not in settings:
                    problems.append(f"{rel}: {name} is not a setting the service reads")
                if name == "UPLOAD_WORKER_QUEUES":
                    for entry in value.split(","):
                        queue = entry.split(":")[0].strip()
                        if queue not in queues:
                            problems.append(f"{rel}: UPLOAD_WORKER_QUEUES names {queue!r}, not a queue")
    for p in problems:
        print(f"deploy/kubernetes: {p}")
    if problems:
        sys.exit(1)
    print(f"deploy/kubernetes: {checked} resources valid against Kubernetes {KUBERNETES} "
          f"(strict); kustomizations complete; settings and queues known")


if __name__ == "__main__":
    main()
