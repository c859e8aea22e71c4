#!/usr/bin/env python3
"""Checks the AWS documents against the code, offline.

- The two IAM policies allow every S3 call the service's code makes (found in its
  Rust sources by the SDK's operation names) and nothing more; the setup calls
  (bucket rules) are allowed by the setup policy alone.
- The lifecycle and CORS files say what `upload-server setup` applies.

Exit status 0 when all holds; 1 with what differs.
"""
import json
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
HERE = ROOT / "deploy" / "aws"

# Each S3 operation the code may call, and the IAM actions it needs. An operation
# found in the code and missing here fails the check: add it, with its actions.
ACTIONS = {
    "create_multipart_upload": {"s3:PutObject"},
    "upload_part": {"s3:PutObject"},
    "complete_multipart_upload": {"s3:PutObject"},
    "put_object": {"s3:PutObject"},
    "copy_object": {"s3:GetObject", "s3:PutObject"},
    "upload_part_copy": {"s3:GetObject", "s3:PutObject"},
    "abort_multipart_upload": {"s3:AbortMultipartUpload"},
    "list_parts": {"s3:ListMultipartUploadParts"},
    "get_object": {"s3:GetObject"},
    "head_object": {"s3:GetObject", "s3:ListBucket"},
    "delete_object": {"s3:DeleteObject"},
    "head_bucket": {"s3:ListBucket"},
    "put_bucket_lifecycle_configuration": {"s3:PutLifecycleConfiguration"},
    "put_bucket_cors": {"s3:PutBucketCORS"},
}
SETUP = {"put_bucket_lifecycle_configuration", "put_bucket_cors"}


def sdk_operations():
    host = re.search(
        r"^host: (\S+)$",
        subprocess.run(["rustc", "-vV"], check=True, capture_output=True, text=True).stdout,
        re.M,
    ).group(1)
    meta = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--offline",
             "--filter-platform", host],
            cwd=ROOT, check=True, capture_output=True, text=True,
        ).stdout
    )
    for package in meta["packages"]:
        if package["name"] == "aws-sdk-s3":
            ops = pathlib.Path(package["manifest_path"]).parent / "src" / "operation"
            return {p.name for p in ops.iterdir() if p.is_dir()}
    sys.exit("aws-sdk-s3 is not a dependency")


def calls_in_code(operations):
    found = {}
    for top in ("crates", "server", "worker"):
        for path in (ROOT / top).rglob("*.rs"):
            if "/tests/" in str(path) or "/benches/" in str(path):
                continue
            text = path.read_text()
            for op in re.findall(r"\.\s*([a-z_0-9]+)\(\)", text):
                if op in operations:
                    found.setdefault(op, set()).add(str(path.relative_to(ROOT)))
    return found


def granted(policy_file):
    policy = json.loads((HERE / policy_file).read_text())
    actions = set()
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow", f"{policy_file}: only Allow statements"
        actions |= set(statement["Action"])
    return actions


def rules_in_code():
    text = (ROOT / "crates/storage/src/lifecycle.rs").read_text()
    domain = (ROOT / "crates/domain/src/bucket.rs").read_text()
    def number(name):
        match = re.search(rf"{name}: (\d+),", text)
        if not match:
            # A default the domain owns (QUARANTINE_DAYS, say): its constant's value.
            constant = re.search(rf"{name}: upload_domain::([A-Z_]+),", text)
            assert constant, f"lifecycle.rs sets no default for {name}"
            match = re.search(rf"pub const {constant.group(1)}: \w+ = (\d+);", domain)
            assert match, f"the domain does not define {constant.group(1)}"
        return int(match.group(1))
    return {
        "abort": number("temp_abort_incomplete_days"),
        "temp": number("temp_expire_days"),
        "quarantine": number("quarantine_expire_days"),
        "cors_methods": re.findall(r'\.allowed_methods\("([A-Z]+)"\)', text),
        "cors_expose": re.findall(r'\.expose_headers\("([A-Za-z-]+)"\)', text),
        "cors_max_age": int(re.search(r"\.max_age_seconds\((\d+)\)", text).group(1)),
    }


def main():
    problems = []
    found = calls_in_code(sdk_operations())
    unmapped = sorted(set(found) - set(ACTIONS))
    for op in unmapped:
        problems.append(f"the code calls {op} ({', '.join(sorted(found[op]))}); add its IAM actions to check.py")
    service_needs = set().union(*(ACTIONS[op] for op in found if op in ACTIONS and op not in SETUP))
    setup_needs = set().union(*(ACTIONS[op] for op in found if op in SETUP))
    service, setup = granted("service-policy.json"), granted("setup-policy.json")
    if service_needs - service:
        problems.append(f"service-policy.json lacks {sorted(service_needs - service)}")
    if service - service_needs:
        problems.append(f"service-policy.json allows what no call needs: {sorted(service - service_needs)}")
    if setup_needs != setup:
        problems.append(f"setup-policy.json allows {sorted(setup)}, the setup calls need {sorted(setup_needs)}")

    rules = rules_in_code()
    temp = json.loads((HERE / "lifecycle-temp.json").read_text())["Rules"]
    quarantine = json.loads((HERE / "lifecycle-quarantine.json").read_text())["Rules"]
    abort = [r["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] for r in temp if "AbortIncompleteMultipartUpload" in r]
    expire = [r["Expiration"]["Days"] for r in temp if "Expiration" in r]
    if abort != [rules["abort"]] or expire != [rules["temp"]]:
        problems.append(f"lifecycle-temp.json: abort {abort}, expire {expire}; the code: {rules['abort']}, {rules['temp']}")
    held = [r["Expiration"]["Days"] for r in quarantine]
    if held != [rules["quarantine"]]:
        problems.append(f"lifecycle-quarantine.json: expire {held}; the code: {rules['quarantine']}")
    (cors,) = json.loads((HERE / "cors-temp.json").read_text())["CORSRules"]
    if (cors["AllowedMethods"], cors["ExposeHeaders"], cors["MaxAgeSeconds"]) != (
        rules["cors_methods"], rules["cors_expose"], rules["cors_max_age"]
    ):
        problems.append(f"cors-temp.json differs from the rule the code applies: {rules}")

    for p in problems:
        print(f"deploy/aws: {p}")
    if problems:
        sys.exit(1)
    print(f"deploy/aws: the policies allow exactly the {len(found)} S3 calls the code makes "
          f"({', '.join(sorted(found))}); the bucket rules match the code")


if __name__ == "__main__":
    main()
