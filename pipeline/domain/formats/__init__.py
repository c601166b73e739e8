"""One adapter per alert format, each turning a decoded payload into canonical alerts.

* :mod:`.common`: ``NormalizeError``, time and severity parsing, how unknown fields are kept;
* :mod:`.canonical`: the canonical alert (DESIGN.md);
* :mod:`.alertmanager`: Prometheus Alertmanager webhook (version 4);
* :mod:`.grafana`: Grafana alerting webhook (version 1);
* :mod:`.pagerduty`: PagerDuty Events API v2: trigger / acknowledge / resolve, and change events;
* :mod:`.cloudevents`: CloudEvents 1.0, structured and binary content mode;
* :mod:`.generic`: any JSON, through a :class:`~.generic.GenericMapping` set in configuration.

:mod:`pipeline.domain.normalize` detects the format and is the one entry point.
Identity rule for every adapter: **labels identify the alert series** (they feed the
fingerprint, with source, service and name), so only what stays the same between a firing
notification and its resolve goes there; everything else the payload carries, known or not,
is kept in annotations.
"""
