#!/usr/bin/env python3
"""Validates the Kubernetes manifests offline.

- Every resource document in deploy/kubernetes validates against the Kubernetes
  API schemas (kubernetes-validate, strict: unknown fields are errors).
- Every kustomization names files and directories that exist.
- The service's settings in them are ones the code reads (each UPLOAD_* name is in
  the README's configuration table), and each worker's UPLOAD_WORKER_QUEUES names
  queues that exist (crates/domain/src/queue.rs).
- ffmpeg and ffprobe never run beside the secrets: every workload whose worker
  runs the metadata or preview queue (or every queue: no UPLOAD_WORKER_QUEUES) has
  a media-sandbox container (`upload-worker media-sandbox-server SOCKET`), and
  - the sandbox gets no Secret: no envFrom secretRef, no secretKeyRef, no mounted
    secret, projected secret or service account token volume, the pod's
    automountServiceAccountToken false, and none of the settings the manifests
    keep in Secrets from anywhere else (its ConfigMaps, plain values);
  - it runs as a user of its own: its runAsUser (container, else pod, else the
    image's USER in deploy/container/Dockerfile) is neither 0 nor the worker's;
  - it is locked down: non-root, read-only root, no privilege escalation, no
    capabilities, RuntimeDefault seccomp, a memory limit, its own /tmp; and the
    pod does not share one process namespace;
  - the worker is told the socket (UPLOAD_MEDIA_SANDBOX_SOCKET, the path the
    sandbox serves), both containers mount that directory from one emptyDir,
    which is the only volume they share, and the worker holds the group the
    socket gets (the sandbox's primary group, or the pod's fsGroup).

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


# The queues whose jobs run ffmpeg or ffprobe.
MEDIA_QUEUES = {"metadata", "preview"}
SANDBOX = "media-sandbox"
SANDBOX_COMMAND = ["upload-worker", "media-sandbox-server"]
SOCKET_SETTING = "UPLOAD_MEDIA_SANDBOX_SOCKET"
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet"}


def secret_keys():
    """Every key the kustomizations' secretGenerator env files put in a Secret."""
    keys = set()
    for k in HERE.rglob("kustomization.yaml"):
        for gen in (yaml.safe_load(k.read_text()) or {}).get("secretGenerator", []):
            for env in gen.get("envs", []):
                path = k.parent / env
                if path.exists():
                    for line in path.read_text().splitlines():
                        name = line.split("=", 1)[0].strip()
                        if name and not name.startswith("#") and "=" in line:
                            keys.add(name)
    return keys


def image_user():
    """(uid, gid) the image runs as when a pod sets none: the final stage's USER."""
    text = (ROOT / "deploy/container/Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\d+)(?::(\d+))?\s*$", text.rsplit("\nFROM ", 1)[-1], re.M)
    if not users:
        return None, None
    uid, gid = users[-1]
    return int(uid), int(gid) if gid else None


def full_command(container):
    """command then args, the program by its name (/usr/local/bin/upload-worker: upload-worker)."""
    command = list(container.get("command") or []) + list(container.get("args") or [])
    return [command[0].rsplit("/", 1)[-1]] + command[1:] if command else []


def is_sandbox(container):
    return container.get("name") == SANDBOX or full_command(container)[:2] == SANDBOX_COMMAND


def is_worker(container):
    command = full_command(container)
    return bool(command) and command[0] == "upload-worker" and not is_sandbox(container)


def mounts(container):
    """A container's volumes by the path each is mounted at."""
    return {m["mountPath"].rstrip("/") or "/": m["name"] for m in container.get("volumeMounts", [])}


def setting(container, name, configmaps):
    """A container's value of `name`: its env, else a ConfigMap it reads; None if unset."""
    for env in container.get("env", []):
        if env.get("name") == name:
            return env.get("value", "")
    for source in container.get("envFrom", []):
        ref = source.get("configMapRef")
        if ref and name in configmaps.get(ref.get("name"), {}):
            return configmaps[ref["name"]][name]
    return None


def runs_media(queues):
    """Whether a worker told UPLOAD_WORKER_QUEUES=`queues` (None: every queue) runs media jobs."""
    if queues is None:
        return True
    # Short names (preview) or full ones (upload.preview), each with an optional count.
    names = {entry.split(":")[0].strip().rsplit(".", 1)[-1] for entry in queues.split(",")}
    return bool(names & MEDIA_QUEUES)


def effective(container, pod_context, field, image_default):
    """A securityContext field as the container runs with it: its own, the pod's, the image's."""
    own = container.get("securityContext") or {}
    if field in own:
        return own[field]
    if field in pod_context:
        return pod_context[field]
    return image_default


def secret_problems(sandbox, spec, configmaps, secret_names):
    """Every way a Secret reaches the sandbox container."""
    problems = []
    for source in sandbox.get("envFrom", []):
        if "secretRef" in source:
            problems.append(f"takes Secret {source['secretRef'].get('name')} (envFrom secretRef)")
    for env in sandbox.get("env", []):
        ref = (env.get("valueFrom") or {}).get("secretKeyRef")
        if ref:
            problems.append(f"takes {env['name']} from Secret {ref.get('name')} (secretKeyRef)")
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    for mount in sandbox.get("volumeMounts", []):
        volume = volumes.get(mount.get("name"), {})
        sources = (volume.get("projected") or {}).get("sources", [])
        if "secret" in volume or any("secret" in s or "serviceAccountToken" in s for s in sources):
            problems.append(f"mounts volume {mount.get('name')}, which holds a Secret or a token")
    if spec.get("automountServiceAccountToken") is not False:
        problems.append("gets the service account's token (set automountServiceAccountToken: false in the pod)")
    names = {env["name"] for env in sandbox.get("env", [])}
    for source in sandbox.get("envFrom", []):
        ref = source.get("configMapRef")
        if ref:
            names |= set(configmaps.get(ref.get("name"), {}))
    for name in sorted(names & secret_names):
        problems.append(f"is given {name}, which these manifests keep in a Secret")
    return problems


def sandbox_problems(resources, secret_names, image):
    """What is wrong with the media sandbox of each workload whose worker runs media jobs.

    `resources` is (file, document) pairs; `secret_names` the settings kept in
    Secrets; `image` the image's (uid, gid).
    """
    image_uid, image_gid = image
    secret_names = set(secret_names)
    for _, doc in resources:
        if doc.get("kind") == "Secret":
            secret_names |= set(doc.get("data") or {}) | set(doc.get("stringData") or {})
    configmaps = {
        doc["metadata"]["name"]: doc.get("data") or {}
        for _, doc in resources
        if doc.get("kind") == "ConfigMap"
    }
    problems = []
    for rel, doc in resources:
        if doc.get("kind") not in WORKLOADS:
            continue
        spec = doc.get("spec", {}).get("template", {}).get("spec", {})
        where = f"{rel}: {doc['kind']} {doc['metadata']['name']}"
        containers = spec.get("containers", [])
        inits = spec.get("initContainers", [])
        workers = [
            c for c in containers
            if is_worker(c) and runs_media(setting(c, "UPLOAD_WORKER_QUEUES", configmaps))
        ]
        if not workers:
            continue
        # A plain container, or a sidecar: an init container that keeps running.
        sandboxes = [c for c in containers if is_sandbox(c)]
        sandboxes += [c for c in inits if is_sandbox(c) and c.get("restartPolicy") == "Always"]
        for c in inits:
            if is_sandbox(c) and c.get("restartPolicy") != "Always":
                problems.append(f"{where}: init container {c.get('name')} would have to exit "
                                "before the worker starts (restartPolicy: Always makes it a sidecar)")
        if len(sandboxes) != 1:
            problems.append(f"{where}: runs the metadata or preview queue, so ffmpeg and ffprobe, "
                            f"with {len(sandboxes)} {SANDBOX} containers instead of one")
            continue
        (sandbox,) = sandboxes
        name = f"{where}: container {sandbox.get('name')}"
        command = full_command(sandbox)
        if command[:2] != SANDBOX_COMMAND or len(command) != 3:
            problems.append(f"{name}: command {command}, not {SANDBOX_COMMAND + ['SOCKET']}")
        socket = command[2] if len(command) == 3 else None
        problems += [f"{name}: {p}" for p in secret_problems(sandbox, spec, configmaps, secret_names)]

        pod = spec.get("securityContext") or {}
        ctx = sandbox.get("securityContext") or {}
        sandbox_uid = effective(sandbox, pod, "runAsUser", image_uid)
        sandbox_gid = effective(sandbox, pod, "runAsGroup", image_gid)
        if sandbox_uid in (None, 0):
            problems.append(f"{name}: runs as uid {sandbox_uid}; it needs a non-root runAsUser of its own")
        if effective(sandbox, pod, "runAsNonRoot", False) is not True:
            problems.append(f"{name}: runAsNonRoot is not true")
        if ctx.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{name}: its root filesystem is writable (readOnlyRootFilesystem: true)")
        if ctx.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: may escalate privileges (allowPrivilegeEscalation: false)")
        caps = ctx.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []) or caps.get("add"):
            problems.append(f"{name}: keeps capabilities (drop: [ALL], add none)")
        if (effective(sandbox, pod, "seccompProfile", None) or {}).get("type") != "RuntimeDefault":
            problems.append(f"{name}: seccomp profile is not RuntimeDefault")
        if "memory" not in ((sandbox.get("resources") or {}).get("limits") or {}):
            problems.append(f"{name}: has no memory limit")
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        sandbox_mounts = mounts(sandbox)
        if "emptyDir" not in volumes.get(sandbox_mounts.get("/tmp"), {}):
            problems.append(f"{name}: has no emptyDir of its own at /tmp")
        if spec.get("shareProcessNamespace"):
            problems.append(f"{where}: shareProcessNamespace lets the sandbox see the worker's processes")

        for worker in workers:
            wname = f"{where}: container {worker.get('name')}"
            worker_uid = effective(worker, pod, "runAsUser", image_uid)
            if sandbox_uid is not None and sandbox_uid == worker_uid:
                problems.append(f"{name}: runs as uid {sandbox_uid}, the worker's own user "
                                "(the worker refuses it, and it could read the worker's secrets)")
            value = setting(worker, SOCKET_SETTING, configmaps)
            if not value:
                problems.append(f"{wname}: has no {SOCKET_SETTING}, so runs ffmpeg itself, beside its secrets")
                continue
            if socket and value != socket:
                problems.append(f"{wname}: {SOCKET_SETTING}={value}, but the sandbox serves {socket}")
            directory = value.rsplit("/", 1)[0]
            worker_mounts = mounts(worker)
            volume = worker_mounts.get(directory)
            if volume is None or sandbox_mounts.get(directory) != volume:
                problems.append(f"{wname}: does not mount the sandbox's socket directory {directory} "
                                "from the volume the sandbox has there")
            elif "emptyDir" not in volumes.get(volume, {}):
                problems.append(f"{wname}: the socket's volume {volume} is not an emptyDir")
            shared = set(worker_mounts.values()) & set(sandbox_mounts.values())
            if volume is not None:
                shared.discard(volume)
            for extra in sorted(shared):
                problems.append(f"{wname}: shares volume {extra} with the sandbox (only the socket's may be)")
            groups = {effective(worker, pod, "runAsGroup", image_gid)}
            groups |= set(pod.get("supplementalGroups") or [])
            if "fsGroup" not in pod and sandbox_gid not in groups:
                problems.append(f"{wname}: cannot connect: the socket's group is the sandbox's "
                                f"{sandbox_gid}, which the worker does not hold (supplementalGroups)")
    return problems


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
    resources = []
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
            resources.append((rel, doc))
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
    problems += sandbox_problems(resources, secret_keys(), image_user())
    for p in problems:
        print(f"deploy/kubernetes: {p}")
    if problems:
        sys.exit(1)
    print(f"deploy/kubernetes: {checked} resources valid against Kubernetes {KUBERNETES} "
          f"(strict); kustomizations complete; settings and queues known; media runs sandboxed")


if __name__ == "__main__":
    main()
