"""Near-real-time re-assessment: CRM change events mark deals dirty; the coalescer runs one debounced
EVENTS run per connection over them (see docs/realtime.md)."""

from worker.events.coalescer import EventCoalescer, Timer, TimerFactory, thread_timer

__all__ = ["EventCoalescer", "Timer", "TimerFactory", "thread_timer"]
