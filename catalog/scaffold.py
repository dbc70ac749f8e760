"""``modelcat init``: the files of a new catalog repository.

A catalog repository holds ``models.yaml`` (with the schema modeline, so editors check it as it is
typed), ``schemas/catalog.schema.json`` (what the modeline names), ``policies/`` (the built-in
rules, their fixtures, settings and an empty waivers file: the review runs what the repository
holds, so rules are changed by pull request too), a GitHub Actions workflow and a GitLab CI file
(review on pull/merge requests, apply on merge), an example workflow of a model retrained daily
(register, pull request, then its rollout, one decision per scheduled run) and ``CODEOWNERS``
listing the models' owners.

``plan_files`` computes every file's bytes without touching the disk; ``write_files`` writes the
ones that do not exist yet (an existing file is kept, never overwritten) atomically.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from catalog.domain.models import Catalog
from catalog.errors import UsageError

__all__ = [
    "BUILTIN_POLICIES",
    "InitResult",
    "builtin_policies",
    "codeowners",
    "example_model",
    "gitignore",
    "plan_files",
    "retrain_workflow",
    "skeleton",
    "workflow_files",
    "write_files",
]

EXAMPLE_SIGNATURE = ("features", 4, "score", 1)


def example_model() -> bytes:
    """A tiny real ONNX model for the skeleton's first version: score = features . w + b (4 -> 1),
    fixed weights, so the same bytes (and digest) on every machine."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    x, n_in, y, n_out = EXAMPLE_SIGNATURE
    w = numpy_helper.from_array(np.array([[0.5], [-0.25], [0.125], [1.0]], dtype=np.float32), "w")
    b = numpy_helper.from_array(np.array([0.1], dtype=np.float32), "b")
    nodes = [helper.make_node("MatMul", [x, "w"], ["xw"]), helper.make_node("Add", ["xw", "b"], [y])]
    graph = helper.make_graph(
        nodes,
        "example",
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, ["batch", n_in])],
        [helper.make_tensor_value_info(y, TensorProto.FLOAT, ["batch", n_out])],
        [w, b],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="modelcat-init")
    model.ir_version = 9
    return model.SerializeToString()


def skeleton(artifact: bytes, today: date) -> str:
    """models.yaml of a new repository: one model, one version (``artifact``'s bytes), one application."""
    hexdigest = hashlib.sha256(artifact).hexdigest()
    x, n_in, y, n_out = EXAMPLE_SIGNATURE
    return f"""\
# yaml-language-server: $schema=./schemas/catalog.schema.json
#
# The model catalog: every model, every version's artifact, and which application serves what.
# Change it by pull request: CI runs `modelcat review` and comments what the change does.
# Replace the example with your models (`modelcat register` appends a version and its artifact).
apiVersion: modelcat/v1

# Where artifacts are kept: `modelcat register` writes into the default store, and every version's
# URI lies in a store. artifacts/ is committed with the catalog, so CI (a fresh clone) has them all.
stores:
  - name: artifacts
    uri: artifacts # content-addressed: artifacts/sha256/<2 hex>/<64 hex>
    default: true

environments:
  - name: production
    target: local # local | kubernetes | kserve | sagemaker (each but local needs its settings block)

models:
  - name: example-model
    owner: ml-team@example.com
    description: A linear scorer from 4 features, to show the format; replace it with your own.
    task: regression
    format: onnx
    versions:
      - version: 0.1.0
        artifact:
          uri: artifacts/sha256/{hexdigest[:2]}/{hexdigest}
          digest: sha256:{hexdigest}
          size_bytes: {len(artifact)}
        signature:
          inputs:
            - {{name: {x}, dtype: float32, shape: [batch, {n_in}]}}
          outputs:
            - {{name: {y}, dtype: float32, shape: [batch, {n_out}]}}
        metrics: {{rmse: 0.42}}
        trained_at: {today.isoformat()}
        registered_at: {today.isoformat()}T00:00:00Z
        stage: production

applications:
  - name: example-app
    owner: app-team@example.com
    environment: production
    bindings:
      - model: example-model
        routes:
          - {{version: 0.1.0, weight: 100}}
        serving: {{replicas: 2, min_replicas: 2, max_replicas: 4, target_concurrency: 8}}
        rollout:
          strategy: canary
          step_percent: 10
          interval_seconds: 300
          guardrails: {{max_error_rate: 0.01, max_p99_latency_ms: 250}}
"""


GITHUB_WORKFLOW = """\
# modelcat: review every pull request that changes the catalog, apply on merge.
# Set the repository variable MODELCAT_PACKAGE to where pip installs modelcat from (a version or a
# git URL). Cloud targets are applied with your Terraform: give it credentials (OIDC to your cloud) and
# a state backend, here an S3 bucket named by the variable TF_STATE_BUCKET (the synthesized stacks use a
# local backend, which backend_override.tf replaces; any backend Terraform supports works the same way).
name: modelcat
on:
  pull_request:
    paths: [models.yaml, @STORES@policies/**, .github/workflows/modelcat.yml]
  push:
    branches: [main]
    paths: [models.yaml@STORES_LAST@]
permissions:
  contents: read
jobs:
  review:
    if: github.event_name == 'pull_request'
    runs-on: ubuntu-latest
    permissions:
      contents: read
      pull-requests: write
      security-events: write
    steps:
      - uses: actions/checkout@v4
        with: {fetch-depth: 0}
      - uses: actions/setup-python@v5
        with: {python-version: "3.11"}
      - run: pip install "${{ vars.MODELCAT_PACKAGE || 'modelcat' }}"
      - id: review
        run: modelcat review "origin/${{ github.base_ref }}" --out review
        continue-on-error: true
      - name: Comment on the pull request
        if: always() && hashFiles('review/comment.md') != ''
        env: {GH_TOKEN: "${{ github.token }}"}
        run: |  # one comment per pull request, updated on every push
          gh pr comment "${{ github.event.pull_request.number }}" --edit-last --body-file review/comment.md \
            || gh pr comment "${{ github.event.pull_request.number }}" --body-file review/comment.md
      - uses: github/codeql-action/upload-sarif@v3
        if: always() && hashFiles('review/review.sarif') != ''
        with: {sarif_file: review/review.sarif, category: modelcat}
      - if: steps.review.outcome != 'success'
        run: echo "modelcat review failed, see the comment" && exit 1
  apply:
    if: github.event_name == 'push'
    runs-on: ubuntu-latest
    environment: production
    concurrency: modelcat-apply
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with: {python-version: "3.11"}
      - uses: hashicorp/setup-terraform@v3
      - run: pip install "${{ vars.MODELCAT_PACKAGE || 'modelcat' }}"
      - run: modelcat validate && modelcat verify --catalog models.yaml && modelcat synth
      - name: terraform apply, stack by stack
        run: |
          for stack in cdktf.out/stacks/*/; do
            name=$(basename "$stack")
            printf 'terraform {\\n  backend "s3" {}\\n}\\n' > "$stack/backend_override.tf"
            terraform -chdir="$stack" init -input=false \\
              -backend-config="bucket=${{ vars.TF_STATE_BUCKET }}" -backend-config="key=modelcat/$name.tfstate"
            terraform -chdir="$stack" apply -input=false -auto-approve
          done
"""

GITLAB_CI = """\
# modelcat: review every merge request that changes the catalog, apply on merge to the default branch.
# Set the CI/CD variables MODELCAT_PACKAGE (what pip installs) and TF_STATE_BUCKET (the state backend
# for cloud targets; the synthesized stacks use a local backend, which backend_override.tf replaces).
stages: [review, apply]

modelcat-review:
  stage: review
  image: python:3.11-slim
  rules:
    - if: $CI_PIPELINE_SOURCE == "merge_request_event"
      changes: [models.yaml, @STORES@policies/**/*]
  variables: {GIT_DEPTH: "0"}
  script:
    - apt-get update -qq && apt-get install -y -qq git
    - pip install "${MODELCAT_PACKAGE:-modelcat}"
    - git fetch origin "$CI_MERGE_REQUEST_TARGET_BRANCH_NAME"
    - modelcat review "origin/$CI_MERGE_REQUEST_TARGET_BRANCH_NAME" --out review
  artifacts:
    when: always
    paths: [review/]
    expose_as: modelcat review

modelcat-apply:
  stage: apply
  image: {name: hashicorp/terraform:1.15, entrypoint: [""]}
  rules:
    - if: $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH
      changes: [models.yaml@STORES_LAST@]
  resource_group: modelcat-apply
  script:
    - apk add --no-cache python3 py3-pip
    - python3 -m venv /venv && /venv/bin/pip install "${MODELCAT_PACKAGE:-modelcat}"
    - /venv/bin/modelcat validate && /venv/bin/modelcat verify --catalog models.yaml && /venv/bin/modelcat synth
    - |
      for stack in cdktf.out/stacks/*/; do
        name=$(basename "$stack")
        printf 'terraform {\\n  backend "s3" {}\\n}\\n' > "$stack/backend_override.tf"
        terraform -chdir="$stack" init -input=false -backend-config="bucket=$TF_STATE_BUCKET" -backend-config="key=modelcat/$name.tfstate"
        terraform -chdir="$stack" apply -input=false -auto-approve
      done
"""


RETRAIN_WORKFLOW = """\
# modelcat: an example for a model retrained daily (edit it to your training job, then enable it).
# 1. Every day at 03:00 UTC, train (the repository variable MODELCAT_TRAIN_COMMAND: a command that
#    writes the new version's ONNX file to the path it is given), `modelcat register` the file as a new
#    version and open a pull request: the modelcat workflow reviews it like any change.
# 2. When that pull request is merged, `modelcat rollout start` begins moving traffic to the version,
#    following the binding's rollout block, as a commit to main.
# 3. Every 15 minutes, `modelcat rollout run --until step` makes the next decision (step, hold, promote
#    or abort, from the version's analysis) and commits it; the modelcat workflow applies each of these
#    commits on its push to main. Git is the controller's state: a job that stops resumes from it.
# Pushes and pull requests made with the default GITHUB_TOKEN start no other workflow, so this one
# uses the secret MODELCAT_BOT_TOKEN (a GitHub App token or a fine-grained token that may push and
# open pull requests): without it the review and the apply of its commits would never run. If main is
# protected, give `rollout start` and `rollout run` --branch and open a pull request of that branch.
name: retrain
on:
  schedule:
    - cron: "0 3 * * *"  # train and register
    - cron: "*/15 * * * *"  # the rollout's next decision
  pull_request:
    types: [closed]
    branches: [main]
    paths: [models.yaml]
  workflow_dispatch:  # train and register now
env:
  MODEL: @MODEL@
  APPLICATION: @APPLICATION@
  MODELCAT_PACKAGE: "${{ vars.MODELCAT_PACKAGE || 'modelcat' }}"
permissions:
  contents: read
concurrency: modelcat-rollout-@APPLICATION@-@MODEL@  # one controller per binding at a time
jobs:
  register:
    if: github.event_name == 'workflow_dispatch' || github.event.schedule == '0 3 * * *'
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
        with: {token: "${{ secrets.MODELCAT_BOT_TOKEN }}"}
      - uses: actions/setup-python@v5
        with: {python-version: "3.11"}
      - run: pip install "$MODELCAT_PACKAGE"
      - name: Train
        env: {TRAIN: "${{ vars.MODELCAT_TRAIN_COMMAND }}"}
        run: |
          test -n "$TRAIN" || { echo "set the repository variable MODELCAT_TRAIN_COMMAND"; exit 1; }
          $TRAIN "$RUNNER_TEMP/model.onnx"
      - name: Register the new version and open a pull request
        env: {GH_TOKEN: "${{ secrets.MODELCAT_BOT_TOKEN }}"}
        run: |
          version="1.$(date -u +%Y%m%d).0"
          branch="retrain/$MODEL/$version"
          git config user.name "modelcat retrain" && git config user.email "modelcat-retrain@users.noreply.github.com"
          git switch -c "$branch"
          modelcat register "$MODEL" --version "$version" --artifact "$RUNNER_TEMP/model.onnx"
          git add -A models.yaml@STORES@ && git commit -m "register $MODEL $version (daily retrain)"
          git push origin "$branch"
          gh pr create --base main --head "$branch" --title "register $MODEL $version" \\
            --body "Daily retrain of $MODEL. Once merged, its rollout to $APPLICATION starts."
  rollout:
    if: >-
      github.event.schedule == '*/15 * * * *' || (github.event_name == 'pull_request' &&
      github.event.pull_request.merged && startsWith(github.event.pull_request.head.ref, 'retrain/@MODEL@/'))
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
        with: {ref: main, token: "${{ secrets.MODELCAT_BOT_TOKEN }}"}
      - uses: actions/setup-python@v5
        with: {python-version: "3.11"}
      - run: pip install "$MODELCAT_PACKAGE"
      - run: git config user.name "modelcat rollout" && git config user.email "modelcat-rollout@users.noreply.github.com"
      - name: Start the rollout of the merged version
        if: github.event_name == 'pull_request'
        env: {BRANCH: "${{ github.event.pull_request.head.ref }}"}
        run: |
          modelcat rollout start "$APPLICATION" --model "$MODEL" --version "${BRANCH##*/}"
          git push origin HEAD:main
      - name: The rollout's next decision
        if: github.event_name == 'schedule'
        run: |
          state=$(modelcat rollout status "$APPLICATION" --model "$MODEL" --format json | jq -r '.rollout.status // "none"')
          if [ "$state" != running ]; then echo "no rollout of $APPLICATION/$MODEL is running ($state)"; exit 0; fi
          code=0  # exit 1 when the rollout ended aborted: its commit is pushed (and applied) all the same
          modelcat rollout run "$APPLICATION" --model "$MODEL" --until step --max-seconds 600 || code=$?
          git push origin HEAD:main
          exit "$code"
"""


GITIGNORE = """\
# what modelcat writes beside the catalog: synthesized stacks, local run state and caches, review
# outputs, and a store's staging area (artifacts being registered); the stores themselves are committed
cdktf.out/
.modelcat/
/review/
"""


def _store_folders(catalog: Catalog) -> list[str]:
    """The folder stores inside the repository (relative to the catalog), which CI must see change."""
    from catalog.domain.stores import catalog_stores, folder_of

    return [f for s in catalog_stores(catalog) if not s.uri.startswith("file://") and (f := folder_of(s))]


def _quoted(glob: str) -> str:
    """A glob as a YAML flow scalar: plain when it starts with a letter or digit, else quoted."""
    return glob if glob[0].isalnum() and all(c.isalnum() or c in "/._-*" for c in glob) else json.dumps(glob)


def workflow_files(catalog: Catalog) -> dict[str, bytes]:
    """The GitHub Actions workflow and the GitLab CI file, triggered by models.yaml, the catalog's
    store folders and (for the review) the policies; and the example workflow of a model retrained
    daily (``retrain_workflow``)."""
    folders = _store_folders(catalog)
    github_globs, gitlab_globs = [_quoted(f"{f}/**") for f in folders], [_quoted(f"{f}/**/*") for f in folders]
    github = GITHUB_WORKFLOW.replace("@STORES@", "".join(f"{g}, " for g in github_globs))
    github = github.replace("@STORES_LAST@", "".join(f", {g}" for g in github_globs))
    gitlab = GITLAB_CI.replace("@STORES@", "".join(f"{g}, " for g in gitlab_globs))
    gitlab = gitlab.replace("@STORES_LAST@", "".join(f", {g}" for g in gitlab_globs))
    return {
        ".github/workflows/modelcat.yml": github.encode(),
        ".github/workflows/retrain.yml": retrain_workflow(catalog).encode(),
        ".gitlab-ci.yml": gitlab.encode(),
    }


def retrain_workflow(catalog: Catalog) -> str:
    """``RETRAIN_WORKFLOW`` for the catalog's first bound model (its application), else its first model."""
    bound = [(b.model, a.name) for a in catalog.applications for b in a.bindings]
    model, application = bound[0] if bound else (catalog.models[0].name if catalog.models else "my-model", "my-app")
    stores = "".join(f" {shlex.quote(folder)}" for folder in _store_folders(catalog))
    return RETRAIN_WORKFLOW.replace("@MODEL@", model).replace("@APPLICATION@", application).replace("@STORES@", stores)


def gitignore(catalog: Catalog) -> str:
    """``GITIGNORE`` and each folder store's staging area; never a store itself."""
    return GITIGNORE + "".join(f"{f}/.staging/\n" for f in _store_folders(catalog))


@dataclass(frozen=True, slots=True)
class InitResult:
    folder: Path
    written: tuple[str, ...]  # paths relative to folder
    kept: tuple[str, ...]  # existed already, left as they were


def codeowners(catalog: Catalog) -> str:
    """``/models.yaml`` owned by every model's owner (GitHub and GitLab accept e-mail addresses;
    owners that are neither an address nor an ``@handle`` are listed in a comment)."""
    owners = sorted({m.owner for m in catalog.models if m is not None})
    usable = [o for o in owners if "@" in o]
    lines = [
        "# Owners of the catalog: every model's owner reviews changes to models.yaml (from `modelcat init`;",
        "# regenerate after adding models, or split the file per team when it grows).",
    ]
    if len(usable) < len(owners):
        lines.append(
            "# owners that are not an e-mail address or @handle: " + ", ".join(o for o in owners if o not in usable)
        )
    lines.append("/models.yaml " + " ".join(usable) if usable else "# /models.yaml @your-team")
    lines.append("/policies/ " + " ".join(usable) if usable else "# /policies/ @your-platform-team")
    return "\n".join(lines) + "\n"


BUILTIN_POLICIES = Path(__file__).parent / "builtin_policies"  # the repository's policies/ (package data)


def builtin_policies(folder: Path = BUILTIN_POLICIES) -> dict[str, bytes]:
    """The built-in rules, their fixtures, settings and README, relative to ``policies/``; the
    waivers file keeps its explanatory comments and no waiver."""
    if not folder.is_dir():
        raise UsageError(f"the built-in policies are missing from this installation ({folder}); reinstall modelcat")
    files = {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }
    waivers = files.get("waivers.yaml", b"").decode()
    comments = "".join(line for line in waivers.splitlines(keepends=True) if line.startswith("#"))
    files["waivers.yaml"] = (comments + "waivers: []\n").encode()
    return files


def plan_files(catalog: Catalog, catalog_text: str, policies: Mapping[str, bytes], schema: str) -> dict[str, bytes]:
    """Every file of the repository, by relative path (models.yaml is ``catalog_text``)."""
    files = {
        "models.yaml": catalog_text.encode(),
        "schemas/catalog.schema.json": schema.encode(),
        **workflow_files(catalog),
        "CODEOWNERS": codeowners(catalog).encode(),
        ".gitignore": gitignore(catalog).encode(),
    }
    files |= {f"policies/{name}": data for name, data in policies.items()}
    return files


def write_files(folder: Path, files: Mapping[str, bytes], keep: Iterable[str] = ()) -> InitResult:
    """Write each file that does not exist in ``folder`` (atomically); report written and kept."""
    from catalog.files import atomic_write

    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{folder} exists and is not a folder")
    keep = set(keep)
    written, kept = [], []
    for name in sorted(files):
        path = folder / name
        if name in keep or path.exists():
            kept.append(name)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, files[name])
        written.append(name)
    return InitResult(folder, tuple(written), tuple(kept))
