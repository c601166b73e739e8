"""Runbooks and guarded remediation, pure: no Kafka, Faust or Redis here (docs/remediation.md).

``runbook`` (the YAML format), ``actions`` (the typed catalogue), ``targets`` (inventory and
target resolution), ``matching`` (which runbook fits an incident), ``guards`` (each policy
that may refuse), ``verification`` (after an action), ``success`` (the learned success
rate), ``audit`` (the trail's records), ``ports`` (state and executors the edges provide)
and ``engine`` (coordinates them).
"""
