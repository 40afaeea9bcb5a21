"""OpenTelemetry's SDK for one test: its own providers (never the global ones), read in memory."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Tracer

from agent_pool_store.telemetry import Telemetry


@dataclass
class Collected:
    """What a test's stores reported, and a tracer of the same provider for the "host"."""

    telemetry: Telemetry
    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader
    tracer: Tracer

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        return [span for span in self.spans() if span.name == name]

    def one(self, name: str) -> ReadableSpan:
        [span] = self.named(name)
        return span

    def children(self, parent: ReadableSpan) -> list[ReadableSpan]:
        assert parent.context is not None
        return [
            span
            for span in self.spans()
            if span.parent is not None and span.parent.span_id == parent.context.span_id
        ]

    def points(self, metric: str) -> list[Any]:
        """The data points of ``metric`` (collected now), empty if it has none."""
        data = self.reader.get_metrics_data()
        found: list[Any] = []
        for resource in data.resource_metrics if data is not None else ():
            for scope in resource.scope_metrics:
                for each in scope.metrics:
                    if each.name == metric:
                        found.extend(each.data.data_points)
        return found

    def total(self, metric: str, **attributes: Any) -> float:
        """A counter's value (a histogram's count) over the points with these attributes."""
        wanted = {key.replace("__", "."): value for key, value in attributes.items()}
        total = 0.0
        for point in self.points(metric):
            if all(point.attributes.get(key) == value for key, value in wanted.items()):
                total += point.count if hasattr(point, "count") else point.value
        return total


@pytest.fixture
def collected() -> Iterator[Collected]:
    """An SDK tracer provider and meter provider of this test's own, given to its stores."""
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    try:
        yield Collected(
            Telemetry(tracer_provider=tracer_provider, meter_provider=meter_provider),
            exporter,
            reader,
            tracer_provider.get_tracer("host.application"),
        )
    finally:
        tracer_provider.shutdown()
        meter_provider.shutdown()


def attribute_text(spans: Sequence[ReadableSpan]) -> str:
    """Every name, attribute, event, link and status text of the spans, as one string."""
    parts: list[str] = []
    for span in spans:
        parts.append(span.name)
        parts.extend(f"{key}={value}" for key, value in (span.attributes or {}).items())
        for event in span.events:
            parts.append(event.name)
            parts.extend(f"{key}={value}" for key, value in (event.attributes or {}).items())
        parts.append(str(span.status.description))
    return "\n".join(parts)
