"""The Prometheus text format (0.0.4), written for a scrape that must stay cheap.

``prometheus_client.generate_latest`` re-validates and re-escapes every metric and
label name and re-sorts every label set on every scrape; with a few dozen routes in
the HTTP histograms that is most of a scrape's CPU. Our metric and label names are
fixed, valid identifiers, so this writer escapes only label values and help texts,
and remembers the label part of each series it has written (series are bounded: no
ids in labels), so a scrape is mostly string joins. The output is the same text
format (same names, types, samples and values); ``*_created`` samples are left out,
as ``disable_created_metrics()`` already does.
"""

from __future__ import annotations

from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

_TYPES = {"info": "gauge", "stateset": "gauge", "gaugehistogram": "histogram", "unknown": "untyped"}
_MAX_REMEMBERED = 20_000  # label strings kept between scrapes (far above the real series count)


def _number(value: float) -> str:
    return str(floatToGoString(value))  # type: ignore[no-untyped-call]


def _escape_value(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _escape_help(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n")


class TextWriter:
    """``render(registry)``: the exposition of every collector of ``registry``."""

    def __init__(self) -> None:
        self._labels: dict[tuple[tuple[str, str], ...], str] = {}

    def _label_part(self, labels: dict[str, str]) -> str:
        if not labels:
            return ""
        key = tuple(labels.items())
        found = self._labels.get(key)
        if found is None:
            if len(self._labels) >= _MAX_REMEMBERED:
                self._labels.clear()
            inner = ",".join(f'{k}="{_escape_value(v)}"' for k, v in sorted(labels.items()))
            found = self._labels[key] = "{" + inner + "}"
        return found

    def render(self, registry: Collector) -> bytes:
        out: list[str] = []
        append = out.append
        for metric in registry.collect():
            name, kind = metric.name, metric.type
            if kind == "counter":
                name += "_total"
            elif kind == "info":
                name += "_info"
            append(f"# HELP {name} {_escape_help(metric.documentation)}\n")
            append(f"# TYPE {name} {_TYPES.get(kind, kind)}\n")
            created = metric.name + "_created"
            for sample in metric.samples:
                if sample.name == created:
                    continue
                stamp = "" if sample.timestamp is None else f" {int(float(sample.timestamp) * 1000):d}"
                append(f"{sample.name}{self._label_part(sample.labels)} {_number(sample.value)}{stamp}\n")
        return "".join(out).encode()
