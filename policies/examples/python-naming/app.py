"""team-naming: a team policy written in Python, built with componentize-py.

Two rules a studio might adopt:

- every object an agent creates or renames carries the team's name prefix
  (configurable, default ``SM_``), so that generated objects are easy to find;
- a scene holds at most ``max-objects`` tracked objects (default 500), so an
  agent cannot flood it.

The op's arguments arrive as canonical CBOR (``intent.payload_cbor``);
``cbor.py`` beside this file turns them into a dict. Configuration
(``[policies.config.team-naming]`` in the host's config, or a fixture case's
``config``) reaches ``evaluate`` as JSON-pointer leaves:
``/prefix`` (text), ``/max-objects`` (integer), ``/probe`` (text, see below).

``probe`` is a self-check for reviewers, not a rule: set it to ``clock``,
``random``, ``filesystem`` or ``environment`` and the policy tries to use that
capability and escalates with a finding saying what it got (rule
``probe-denied``, ``probe-leak`` or ``probe-observed``). The fixture suite uses
it to prove that the host grants none of them: the clock reads the Unix epoch,
no file opens, the environment is empty, and randomness is the same fixed
stream in every evaluation.

The host evaluates every op in a fresh instance: nothing kept in globals
survives, so the policy is a plain function of its arguments.
"""

import os
import time

import cbor

from wit_world import exports
from wit_world.imports import host
from wit_world.imports.types import (
    Finding,
    Intent,
    Context,
    Leaf,
    PolicyInfo,
    RuleInfo,
    Scalar_Integer,
    Scalar_Text,
    Severity,
    Verdict,
    Verdict_Allow,
    Verdict_Deny,
    Verdict_Escalate,
)

NAME = "team-naming"
DEFAULT_PREFIX = "SM_"
DEFAULT_MAX_OBJECTS = 500

RULES = [
    (f"{NAME}.prefix", "object names created or renamed by an agent start with the team prefix"),
    (f"{NAME}.object-budget", "the scene stays within the per-scene object budget"),
    (f"{NAME}.bad-config", "the policy's configuration has the documented types"),
    (f"{NAME}.probe-denied", "reviewer self-check: the host refused the probed capability"),
    (f"{NAME}.probe-leak", "reviewer self-check: the probed capability reached outside the sandbox"),
    (f"{NAME}.probe-observed", "reviewer self-check: what the probed capability returned"),
]


def config_value(config: list[Leaf], path: str):
    """The scalar at `path` of the configuration, or None."""
    for leaf in config:
        if leaf.path == path:
            return leaf.value
    return None


def args_of(intent: Intent) -> dict:
    """The op's arguments as plain Python values (decoded from the canonical
    CBOR the host sends), e.g. {"name": "SM_Crate", "kind": "mesh"}."""
    args = cbor.decode(intent.payload_cbor)
    return args if isinstance(args, dict) else {}


def finding(rule: str, path: str, message: str, severity=Severity.ERROR) -> Finding:
    return Finding(rule=f"{NAME}.{rule}", severity=severity, path=path, message=message)


def probe(what: str) -> Verdict:
    """Try one capability and escalate with what happened: rule `probe-denied`
    when the host refused it, `probe-leak` when it reached outside,
    `probe-observed` for randomness (the bytes are in the message, so two runs
    can be compared). Never raises."""
    def say(rule, message):
        return Verdict_Escalate([finding(rule, "", message, Severity.INFO)])

    if what == "clock":
        now = time.time()
        if now < 1.0:
            return say("probe-denied", f"clock: time.time() = {now!r}, frozen at the Unix epoch")
        return say("probe-leak", f"clock: time.time() = {now!r}, real time")
    if what == "random":
        return say("probe-observed", f"random: os.urandom(16) = {os.urandom(16).hex()}")
    if what == "filesystem":
        errors = []
        for path in ("/etc/passwd", "/", ".", "policies.lock"):
            try:
                with open(path, "rb") as f:
                    data = f.read(16)
                return say("probe-leak", f"filesystem: opened {path} and read {len(data)} bytes")
            except OSError as e:
                errors.append(f"{path}: {type(e).__name__}")
        return say("probe-denied", "filesystem: every open failed (" + ", ".join(errors) + ")")
    if what == "environment":
        n = len(os.environ)
        if n == 0:
            return say("probe-denied", "environment: no variables")
        return say("probe-leak", f"environment: {n} variables: {', '.join(sorted(os.environ))}")
    return Verdict_Deny([finding("bad-config", "/probe", f"unknown probe {what!r}: use clock, random, filesystem or environment")])


class Evaluator(exports.Evaluator):
    def metadata(self) -> PolicyInfo:
        return PolicyInfo(
            name=NAME,
            version="0.1.0",
            description="Team naming convention (configurable prefix) and per-scene object budget.",
            rules=[RuleInfo(id=r, description=d) for r, d in RULES],
        )

    def evaluate(self, intent: Intent, context: Context, config: list[Leaf]) -> Verdict:
        probe_what = config_value(config, "/probe")
        if probe_what is not None:
            if not isinstance(probe_what, Scalar_Text):
                return Verdict_Deny([finding("bad-config", "/probe", "`probe` must be text")])
            return probe(probe_what.value)

        prefix = config_value(config, "/prefix")
        if prefix is None:
            prefix = DEFAULT_PREFIX
        elif isinstance(prefix, Scalar_Text):
            prefix = prefix.value
        else:
            return Verdict_Deny([finding("bad-config", "/prefix", "`prefix` must be text, e.g. prefix = \"SM_\"")])

        budget = config_value(config, "/max-objects")
        if budget is None:
            budget = DEFAULT_MAX_OBJECTS
        elif isinstance(budget, Scalar_Integer) and budget.value >= 0:
            budget = budget.value
        else:
            return Verdict_Deny([finding("bad-config", "/max-objects", "`max-objects` must be a non-negative integer")])

        findings = []
        if intent.op in ("create_object", "rename_object"):
            name = args_of(intent).get("name")
            if isinstance(name, str) and not name.startswith(prefix):
                findings.append(finding(
                    "prefix", "/name",
                    f"object name {name!r} lacks the team prefix {prefix!r}; name it {prefix + name!r}",
                ))
        if intent.op == "create_object" and context.scene_object_count >= budget:
            findings.append(finding(
                "object-budget", "",
                f"the scene already holds {context.scene_object_count} objects, the budget is {budget}; "
                "delete unused objects first or ask the team to raise `max-objects`",
            ))
        if findings:
            host.log(host.LogLevel.INFO, f"{len(findings)} finding(s) for tid {intent.tid}")
            return Verdict_Deny(findings)
        return Verdict_Allow()
