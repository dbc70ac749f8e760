"""regopy and the Python oracle agree on every built-in rule, over generated catalogs and stacks."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from catalog.policy.check import load_policies
from catalog.policy.findings import SubjectInput
from catalog.policy.inputs import catalog_inputs
from catalog.policy.synth_inputs import block_inputs
from tests.policy.helpers import POLICIES
from tests.policy.oracle import ORACLE, oracle_messages
from tests.policy.strategies import NOW, catalogs, stack_bodies


@pytest.fixture(scope="module")
def engine():
    return load_policies(POLICIES)


def _agree(engine, inputs: list[SubjectInput]) -> int:
    policies, config = engine
    compared = 0
    for rule in policies.rules:
        assert rule.id in ORACLE
        for item in inputs:
            if item.kind not in rule.kinds:
                continue
            rego = set(policies.messages(rule, item))
            assert rego == set(oracle_messages(rule.id, item.document, config)), (rule.id, item.document)
            compared += 1
    return compared


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(catalogs())
def test_rego_agrees_with_the_oracle_on_generated_catalogs(engine, generated):
    catalog, base = generated
    inputs = catalog_inputs(catalog, now=NOW, settings=engine[1], base=base)
    assert _agree(engine, inputs) > 0


@settings(max_examples=30, deadline=None)
@given(stack_bodies())
def test_rego_agrees_with_the_oracle_on_generated_stacks(engine, body):
    document = {"resource": {"kubernetes_deployment_v1": {"app": body}}, "provider": {"kubernetes": [body]}}
    _agree(engine, block_inputs("prod-kubernetes", document))
