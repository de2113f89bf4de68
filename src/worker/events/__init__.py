"""Near-real-time re-assessment: CRM change events mark deals dirty; the coalescer runs one debounced
EVENTS run per connection over them (see docs/realtime.md). CRM events arrive by webhook (the ops API) or
from a change stream the worker follows (`StreamRunner`, Salesforce Change Data Capture)."""

from worker.events.coalescer import EventCoalescer, Timer, TimerFactory, thread_timer
from worker.events.stream import StreamRunner, inbound_events

__all__ = ["EventCoalescer", "StreamRunner", "Timer", "TimerFactory", "inbound_events", "thread_timer"]
