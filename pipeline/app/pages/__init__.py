"""The incident pages the worker serves: reads (Redis, bounded), view (what a page shows),
render (HTML from templates), handlers (``/incidents``, ``/incidents/<id>``)."""
