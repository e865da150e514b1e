"""The web console: where operators and customer service see, diagnose and act, in the
browser. Server-rendered pages (Jinja2) with htmx for live parts, mounted at /console by
api/app.py. It reads and acts through the engine and the store's repositories, as the
ops API does, and logs in the operators of the ops API with a password (docs/console.md).
"""
